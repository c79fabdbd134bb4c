-- Every distinct landed version of an asset card, oldest first. The landing zone holds a card
-- again whenever the extractor re-reads it (watermark look-back) or it changed; a copy equal to
-- the one before it is not a new version. A tombstone (the key snapshot no longer had the
-- card) is a version of its own, flagged is_deleted, with no values.
with

source as (
    select
        *,
        -- the copy's content: every landed column but the batch it came in
        hash(*columns(* exclude (_batch_id))) as content_hash
    from {{ source('asset', 'zc_kp') }}
),

renamed as (
    select
        {{ clean_text('zcbh') }} as asset_no,
        coalesce(_deleted, false) as is_deleted,
        {{ clean_text('zcmc') }} as asset_name,
        {{ clean_text('flh') }} as category_local,
        {{ crosswalk('asset', 'category', 'flh') }} as category_code,
        {{ clean_text('sydw') }} as org_id,
        {{ clean_text('syr') }} as custodian_staff_no,
        {{ clean_text('cfdd') }} as building_code,
        {{ parse_date('qdrq') }} as acquired_on,
        cast(jz as decimal(18, 2)) as asset_value,
        sl as quantity,
        {{ clean_text('syzk') }} as use_status_local,
        {{ crosswalk('asset', 'use_status', 'syzk') }} as use_status_code,
        {{ clean_text('zzzt') }} as account_status_local,
        {{ crosswalk('asset', 'account_status', 'zzzt') }} as account_status_code,
        try_cast(xgsj as timestamp) as modified_at,
        strptime(_batch_id, '%Y%m%dT%H%M%S%fZ') as landed_at,
        _batch_id as batch_id,
        content_hash,
        -- within one batch a tombstone comes after the data (the key snapshot is taken last)
        lag(content_hash) over (
            partition by zcbh
            order by _batch_id, coalesce(_deleted, false), xgsj nulls first
        ) as previous_hash
    from source
)

select
    asset_no || '|' || row_number() over (partition by asset_no order by batch_id, is_deleted, modified_at)
        as k_asset_card_version,
    row_number() over (partition by asset_no order by batch_id, is_deleted, modified_at) as version_no,
    * exclude (content_hash, previous_hash)
from renamed
where previous_hash is distinct from content_hash
