-- Rows held back: by an error-severity rule of the quality gate (PX datasets), by the province
-- (rows a PARTIAL receipt rejected, under the platform's PX rule IDs, while the candidate is still
-- the version it rejected), or at the source (keys a file export wrote twice with different
-- content). first_seen is when the finding was first made; last_seen is the latest run that
-- still made it (it moves on every gate run). A personal field's value (names, ID numbers) is
-- kept masked, with value_fingerprint, a keyed hash that recognises the same value across runs.
with

gate as (
    -- the gate's own findings and the province's rejections it still holds (same format)
    select distinct
        dataset,
        record_key,
        rule_id,
        field,
        value,
        value_fingerprint,
        source_system,
        batch_id,
        coalesce(first_seen, checked_at) as first_seen,
        checked_at as last_seen
    from {{ gate_findings() }}
    where severity = 'error'
),

inventory_conflicts as (
    select
        'asset.zc_pd' as dataset,
        check_no as record_key,
        'CDX-E014' as rule_id,
        '盘点单号' as field,
        'lines ' || source_lines as value,  -- noqa: RF04
        cast(null as varchar) as value_fingerprint,
        'asset' as source_system,
        batch_id,
        strptime(batch_id, '%Y%m%dT%H%M%S%fZ') as first_seen,
        strptime(batch_id, '%Y%m%dT%H%M%S%fZ') as last_seen
    from {{ ref('stg_asset__inventory_check_conflicts') }}
)

select * from gate
union all
select * from inventory_conflicts
