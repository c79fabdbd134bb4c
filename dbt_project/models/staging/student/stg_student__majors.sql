with

source as (
    {{ latest_version(source('student', 'xg_zy'), 'zyh', 'gxsj') }}
),

renamed as (
    select
        {{ clean_text('zyh') }} as major_no,
        {{ clean_text('zymc') }} as major_name,
        {{ coded('student', 'major', 'zyh', 'major_local', 'major_code') }},
        {{ coded('student', 'dept', 'yxdm', 'dept_local', 'org_id') }},
        try_cast(xz as decimal(3, 1)) as study_years,
        {{ coded('student', 'level', 'cc', 'training_level_local', 'training_level_code') }},
        {{ coded('student', 'enrolling', 'zszt', 'enrolling_local', 'enrolling_code') }},
        try_cast(gxsj as timestamp) as modified_at,
        _batch_id as batch_id
    from source
)

select * from renamed
