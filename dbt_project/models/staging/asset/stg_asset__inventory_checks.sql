with

conflicts as (
    select
        check_no,
        batch_id
    from {{ ref('stg_asset__inventory_check_conflicts') }}
),

landed as (
    select landed.*
    from {{ source('asset', 'zc_pd') }} as landed
    anti join conflicts
        on landed.盘点单号 = conflicts.check_no and landed._batch_id = conflicts.batch_id
),

source as (
    {{ latest_version('landed', '盘点单号', '盘点日期', lineage=['_source_file', '_source_line']) }}
),

renamed as (
    select
        {{ clean_text('盘点单号') }} as check_no,
        {{ clean_text('资产编号') }} as asset_no,
        {{ parse_date('盘点日期') }} as checked_on,
        {{ clean_text('盘点结果') }} as result_local,
        {{ clean_text('盘点人工号') }} as checker_staff_no,
        {{ clean_text('备注') }} as remark,
        _source_file as source_file,
        _source_line as source_line,
        _batch_id as batch_id
    from source
)

select * from renamed
