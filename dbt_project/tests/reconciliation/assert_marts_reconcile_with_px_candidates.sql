-- Per PX dataset: the mart rows in the dataset's scope = its candidate rows
-- (feed_px_candidates__*), so no row is lost or doubled between the marts and the quality gate
-- (a join that fans out, a filter that drops more than the scope). The gate and the publisher then check candidate rows = feed
-- rows + rows held back (campusdx.pipeline.reconcile_feed). One row per dataset that differs.
with

scoped_students as (
    select student_no from {{ ref('dim_student') }}
    where is_current and training_level_code = '3'  -- XSJBXX: current 本科 students
),

counts as (
    select
        'ZZJG' as dataset,
        (select count(*) from {{ ref('dim_org') }}) as mart_rows,
        (select count(*) from {{ ref('feed_px_candidates__zzjg') }}) as candidate_rows
    union all
    select
        'ZY' as dataset,
        (select count(*) from {{ ref('dim_major') }} where training_level_code = '3') as mart_rows,
        (select count(*) from {{ ref('feed_px_candidates__zy') }}) as candidate_rows
    union all
    select
        'JZGJBXX' as dataset,
        (select count(*) from {{ ref('dim_staff') }} where is_current) as mart_rows,
        (select count(*) from {{ ref('feed_px_candidates__jzgjbxx') }}) as candidate_rows
    union all
    select
        'XSJBXX' as dataset,
        (select count(*) from scoped_students) as mart_rows,
        (select count(*) from {{ ref('feed_px_candidates__xsjbxx') }}) as candidate_rows
    union all
    select
        'XJYD' as dataset,
        (
            select count(*) from {{ ref('fct_student_status_change') }}
            where student_no in (select scoped_students.student_no from scoped_students)
        ) as mart_rows,
        (select count(*) from {{ ref('feed_px_candidates__xjyd') }}) as candidate_rows
    union all
    select
        'CWKMYE' as dataset,
        (select count(*) from {{ ref('fct_account_balance_monthly') }}) as mart_rows,
        (select count(*) from {{ ref('feed_px_candidates__cwkmye') }}) as candidate_rows
    union all
    select
        'GDZC' as dataset,
        (select count(*) from {{ ref('dim_asset') }}) as mart_rows,
        (select count(*) from {{ ref('feed_px_candidates__gdzc') }}) as candidate_rows
)

select
    dataset,
    mart_rows,
    candidate_rows,
    candidate_rows - mart_rows as difference
from counts
where mart_rows <> candidate_rows
