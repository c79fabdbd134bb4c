with

source as (
    {{ latest_version(source('finance', 'gl_pz'), 'pzid', 'xgsj') }}
),

renamed as (
    select
        pzid as voucher_id,
        {{ clean_text('kjnd') }} as fiscal_year,
        {{ clean_text('kjqj') }} as fiscal_period,
        {{ parse_date('pzrq') }} as voucher_date,
        try_cast(xgsj as timestamp) as modified_at,
        _batch_id as batch_id
    from source
)

select * from renamed
