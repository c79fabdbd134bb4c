-- Fixed assets (固定资产) by GB/T 14885 class and 使用单位 as of the `as_of` date (高等教育
-- 基层统计报表): the cards on the books (在账) that day, each in the version it had at the end
-- of that day. A card first landed with a later modification is counted as first landed (the
-- warehouse knows no earlier version). Cards whose class has no standard code count under '?'.
with

versions as (
    select * from {{ ref('stg_asset__asset_card_versions') }}
),

as_of_cards as (
    select *
    from versions
    where
        coalesce(modified_at, landed_at) < cast('{{ var("as_of") }}' as date) + interval 1 day
        or version_no = 1
    qualify row_number() over (
        partition by asset_no
        order by
            coalesce(modified_at, landed_at) < cast('{{ var("as_of") }}' as date) + interval 1 day desc,
            version_no desc
    ) = 1
),

on_books as (
    select *
    from as_of_cards
    where
        not is_deleted
        and account_status_code = '1'  -- ZZZT 在账
        and acquired_on <= cast('{{ var("as_of") }}' as date)
),

classes as (
    select * from {{ ref('gb_t_14885__zcfl_subset') }}
),

orgs as (
    select * from {{ ref('dim_org') }}
)

select
    coalesce(on_books.category_code, '?') || '|' || coalesce(on_books.org_id, '?') as k_stats_fixed_assets,
    cast('{{ var("as_of") }}' as date) as as_of_date,
    coalesce(on_books.category_code, '?') as category_code,
    any_value(classes.name) as category_name,
    coalesce(on_books.org_id, '?') as org_id,
    any_value(orgs.org_name) as org_name,
    count(*) as assets,
    cast(sum(on_books.quantity) as bigint) as quantity,
    cast(sum(on_books.asset_value) as decimal(18, 2)) as total_value
from on_books
left join classes on on_books.category_code = classes.code
left join orgs on on_books.org_id = orgs.org_id
group by all
