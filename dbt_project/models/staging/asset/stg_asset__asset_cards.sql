with

source as (
    {{ latest_version(source('asset', 'zc_kp'), 'zcbh', 'xgsj') }}
),

renamed as (
    select
        {{ clean_text('zcbh') }} as asset_no,
        {{ clean_text('zcmc') }} as asset_name,
        {{ coded('asset', 'category', 'flh', 'category_local', 'category_code') }},
        {{ clean_text('sydw') }} as org_id,
        {{ clean_text('syr') }} as custodian_staff_no,
        {{ clean_text('cfdd') }} as building_code,
        {{ parse_date('qdrq') }} as acquired_on,
        cast(jz as decimal(18, 2)) as asset_value,
        sl as quantity,
        {{ coded('asset', 'use_status', 'syzk', 'use_status_local', 'use_status_code') }},
        {{ coded('asset', 'account_status', 'zzzt', 'account_status_local', 'account_status_code') }},
        try_cast(xgsj as timestamp) as modified_at,
        _batch_id as batch_id
    from source
)

select * from renamed
