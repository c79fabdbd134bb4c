with

source as (
    {{ latest_version(source('finance', 'gl_kmb'), 'kmdm', 'xgsj') }}
),

renamed as (
    select
        {{ clean_text('kmdm') }} as account_code,
        {{ clean_text('kmmc') }} as account_name,
        left({{ clean_text('kmdm') }}, 4) as gov_account_code,
        {{ coded('finance', 'direction', 'yefx', 'direction_local', 'balance_direction') }},
        try_cast(xgsj as timestamp) as modified_at,
        _batch_id as batch_id
    from source
)

select * from renamed
