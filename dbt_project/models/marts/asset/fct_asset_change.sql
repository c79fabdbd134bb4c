-- Changes of asset cards (资产变动), read from the versions the landing zone holds: a card's
-- first version is 新增 (or its first version after a deletion), a tombstone is 删除, and
-- between two versions each changed attribute is one change of its kind (使用单位 -> 调拨,
-- 使用人 -> 使用人变更, 价值 -> 价值调整, 在账状态 -> 处置 when it becomes 已处置, ...).
{%- set tracked = [
    ('org_id', "'调拨'"),
    ('custodian_staff_no', "'使用人变更'"),
    ('building_code', "'存放地点变更'"),
    ('asset_value', "'价值调整'"),
    ('quantity', "'数量变更'"),
    ('use_status_local', "'使用状况变更'"),
    ('account_status_local', "case when after_account_status_code = '2' then '处置' else '在账状态变更' end"),
    ('asset_name', "'名称变更'"),
    ('category_local', "'分类变更'"),
    ('acquired_on', "'取得日期变更'"),
] %}
with

versions as (
    select
        *,
        min(batch_id) over () as first_batch_id
    from {{ ref('stg_asset__asset_card_versions') }}
),

paired as (
    select
        versions.asset_no,
        versions.version_no,
        versions.is_deleted,
        versions.modified_at,
        versions.landed_at,
        versions.batch_id,
        versions.batch_id = versions.first_batch_id as in_first_load,
        previous.version_no is null as is_first_version,
        coalesce(previous.is_deleted, false) as follows_deletion,
        versions.account_status_code as after_account_status_code,
        -- the card's values after the change (before it, for a deletion)
        coalesce(versions.org_id, previous.org_id) as org_id,
        coalesce(versions.category_code, previous.category_code) as category_code,
    {% for column, _ in tracked -%}
        previous.{{ column }} as before_{{ column }},
        versions.{{ column }} as after_{{ column }}{{ "," if not loop.last }}
    {% endfor %}
    from versions
    left join versions as previous
        on
            versions.asset_no = previous.asset_no
            and versions.version_no = previous.version_no + 1
),

changes as (
    select
        *,
        '新增' as change_kind,
        cast(null as varchar) as changed_field,
        cast(null as varchar) as value_before,
        cast(null as varchar) as value_after
    from paired
    where not is_deleted and (is_first_version or follows_deletion)
    union all
    select
        *,
        '删除' as change_kind,
        cast(null as varchar) as changed_field,
        cast(null as varchar) as value_before,
        cast(null as varchar) as value_after
    from paired
    where is_deleted and not is_first_version and not follows_deletion
    {% for column, kind in tracked %}
        union all
        select
            *,
            {{ kind }} as change_kind,
            '{{ column }}' as changed_field,
            cast(before_{{ column }} as varchar) as value_before,
            cast(after_{{ column }} as varchar) as value_after
        from paired
        where
            not is_deleted
            and not is_first_version
            and not follows_deletion
            and before_{{ column }} is distinct from after_{{ column }}
    {% endfor %}
)

select
    asset_no || '|' || version_no || '|' || change_kind as k_asset_change,
    asset_no,
    version_no,
    change_kind,
    changed_field,
    value_before,
    value_after,
    case when is_deleted then landed_at else modified_at end as changed_at,
    landed_at,
    in_first_load,
    org_id,
    category_code,
    batch_id
from changes
