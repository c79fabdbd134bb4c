with

source as (
    {{ latest_version(source('student', 'xg_xsxx'), 'xh', 'gxsj') }}
),

renamed as (
    select
        {{ clean_text('xh') }} as student_no,
        {{ clean_text('xm') }} as full_name,
        {{ crosswalk('student', 'gender', 'xbdm') }} as gender_code,
        {{ parse_date('csrq') }} as birth_date,
        {{ crosswalk('student', 'nation', 'mz') }} as ethnicity_code,
        {{ crosswalk('student', 'id_type', 'zjlx') }} as id_type_code,
        {{ normalise_id_number('zjhm') }} as id_number,
        {{ crosswalk('student', 'nationality', 'gj') }} as nationality_code,
        {{ crosswalk('student', 'politics', 'zzmm') }} as political_status_code,
        {{ clean_text('syd') }} as origin_region_code,
        {{ crosswalk('student', 'dept', 'yxdm') }} as org_id,
        {{ clean_text('zyh') }} as major_no,
        {{ clean_text('nj') }} as grade,
        {{ clean_text('bh') }} as class_no,
        {{ parse_date('rxrq') }} as enrolled_on,
        {{ crosswalk('student', 'status', 'xjzt') }} as student_status_code,
        try_cast(gxsj as timestamp) as modified_at,
        _batch_id as batch_id
    from source
)

select * from renamed
