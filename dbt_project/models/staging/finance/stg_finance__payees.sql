with

source as (
    {{ latest_version(source('finance', 'gl_wlgr'), 'grbh', 'xgsj') }}
),

renamed as (
    select
        {{ clean_text('grbh') }} as payee_no,
        {{ clean_text('xm') }} as full_name,
        {{ normalise_id_number('zjhm') }} as id_number,
        {{ clean_text('gh') }} as staff_no,
        {{ clean_text('rylb') }} as payee_kind_local,
        try_cast(xgsj as timestamp) as modified_at,
        _batch_id as batch_id
    from source
)

select * from renamed
