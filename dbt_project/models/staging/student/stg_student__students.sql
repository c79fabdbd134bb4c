with

source as (
    {{ latest_version(source('student', 'xg_xsxx'), 'xh', 'gxsj') }}
),

renamed as (
    select
        {{ clean_text('xh') }} as student_no,
        {{ clean_text('xm') }} as full_name,
        {{ coded('student', 'gender', 'xbdm', 'gender_local', 'gender_code') }},
        {{ parse_date('csrq') }} as birth_date,
        {{ coded('student', 'nation', 'mz', 'ethnicity_local', 'ethnicity_code') }},
        {{ coded('student', 'id_type', 'zjlx', 'id_type_local', 'id_type_code') }},
        {{ normalise_id_number('zjhm') }} as id_number,
        {{ coded('student', 'nationality', 'gj', 'nationality_local', 'nationality_code') }},
        {{ coded('student', 'politics', 'zzmm', 'political_status_local', 'political_status_code') }},
        {{ clean_text('syd') }} as origin_region_code,
        {{ coded('student', 'dept', 'yxdm', 'dept_local', 'org_id') }},
        {{ clean_text('zyh') }} as major_no,
        {{ clean_text('nj') }} as grade,
        {{ clean_text('bh') }} as class_no,
        {{ parse_date('rxrq') }} as enrolled_on,
        {{ coded('student', 'status', 'xjzt', 'student_status_local', 'student_status_code') }},
        try_cast(gxsj as timestamp) as modified_at,
        _batch_id as batch_id
    from source
)

select * from renamed
