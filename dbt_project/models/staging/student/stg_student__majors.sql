with

source as (
    {{ latest_version(source('student', 'xg_zy'), 'zyh', 'gxsj') }}
),

renamed as (
    select
        {{ clean_text('zyh') }} as major_no,
        {{ clean_text('zymc') }} as major_name,
        {{ crosswalk('student', 'major', 'zyh') }} as major_code,
        {{ crosswalk('student', 'dept', 'yxdm') }} as org_id,
        try_cast(xz as decimal(3, 1)) as study_years,
        {{ crosswalk('student', 'level', 'cc') }} as training_level_code,
        {{ crosswalk('student', 'enrolling', 'zszt') }} as enrolling_code,
        try_cast(gxsj as timestamp) as modified_at,
        _batch_id as batch_id
    from source
)

select * from renamed
