with

source as (
    {{ latest_version(source('student', 'xg_yx'), 'yxdm', 'gxsj') }}
),

renamed as (
    select
        {{ clean_text('yxdm') }} as student_dept_code,
        {{ clean_text('yxmc') }} as dept_name,
        {{ coded('student', 'dept', 'yxdm', 'dept_local', 'org_id') }},
        try_cast(gxsj as timestamp) as modified_at,
        _batch_id as batch_id
    from source
)

select * from renamed
