with

source as (
    {{ latest_version(source('asset', 'zc_kp'), 'zcbh', 'xgsj') }}
),

renamed as (
    select
        {{ clean_text('zcbh') }} as asset_no,
        {{ clean_text('zcmc') }} as asset_name,
        {{ clean_text('flh') }} as category_local,
        {{ clean_text('sydw') }} as org_id,
        {{ clean_text('syr') }} as custodian_staff_no,
        {{ clean_text('cfdd') }} as building_code,
        {{ parse_date('qdrq') }} as acquired_on,
        cast(jz as decimal(18, 2)) as asset_value,
        sl as quantity,
        {{ clean_text('syzk') }} as use_status_local,
        {{ clean_text('zzzt') }} as account_status_local,
        try_cast(xgsj as timestamp) as modified_at,
        _batch_id as batch_id
    from source
)

select * from renamed
