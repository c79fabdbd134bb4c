with

source as (
    {{ latest_version(source('asset', 'zc_ly'), 'lydm', 'xgsj') }}
),

renamed as (
    select
        {{ clean_text('lydm') }} as building_code,
        {{ clean_text('lymc') }} as building_name,
        {{ clean_text('xqdm') }} as campus_code,
        try_cast(xgsj as timestamp) as modified_at,
        _batch_id as batch_id
    from source
)

select * from renamed
