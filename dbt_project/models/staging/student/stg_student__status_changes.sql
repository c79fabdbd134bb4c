with

source as (
    {{ latest_version(source('student', 'xg_xjyd'), 'ydbh', 'gxsj') }}
),

renamed as (
    select
        {{ clean_text('ydbh') }} as change_no,
        {{ clean_text('xh') }} as student_no,
        {{ crosswalk('student', 'change_kind', 'ydlb') }} as change_kind_code,
        {{ crosswalk('student', 'change_reason', 'ydyy') }} as change_reason_code,
        {{ parse_date('ydrq') }} as changed_on,
        {{ crosswalk('student', 'dept', 'ydqyx') }} as org_id_before,
        {{ crosswalk('student', 'dept', 'ydhyx') }} as org_id_after,
        {{ clean_text('ydqzy') }} as major_no_before,
        {{ clean_text('ydhzy') }} as major_no_after,
        {{ clean_text('spwh') }} as approval_ref,
        try_cast(gxsj as timestamp) as modified_at,
        _batch_id as batch_id
    from source
)

select * from renamed
