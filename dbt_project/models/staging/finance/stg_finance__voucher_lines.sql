with

source as (
    {{ latest_version(source('finance', 'gl_fl'), 'flid', 'xgsj') }}
),

renamed as (
    select
        flid as line_id,
        pzid as voucher_id,
        hh as line_no,
        {{ clean_text('kmdm') }} as account_code,
        {{ clean_text('bmdm') }} as org_id,
        cast(jfje as decimal(18, 2)) as debit_amount,
        cast(dfje as decimal(18, 2)) as credit_amount,
        {{ clean_text('wldw') }} as payee_id,
        try_cast(xgsj as timestamp) as modified_at,
        _batch_id as batch_id
    from source
)

select * from renamed
