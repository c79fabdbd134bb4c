{#- codes as the crosswalk had them on the change date -#}
{%- set changed_on = parse_date('ydrq') %}
with

source as (
    {{ latest_version(source('student', 'xg_xjyd'), 'ydbh', 'gxsj') }}
),

renamed as (
    select
        {{ clean_text('ydbh') }} as change_no,
        {{ clean_text('xh') }} as student_no,
        {{ coded('student', 'change_kind', 'ydlb', 'change_kind_local', 'change_kind_code',
            on_date=changed_on) }},
        {{ coded('student', 'change_reason', 'ydyy', 'change_reason_local', 'change_reason_code',
            on_date=changed_on) }},
        {{ parse_date('ydrq') }} as changed_on,
        {{ coded('student', 'dept', 'ydqyx', 'dept_before_local', 'org_id_before', on_date=changed_on) }},
        {{ coded('student', 'dept', 'ydhyx', 'dept_after_local', 'org_id_after', on_date=changed_on) }},
        {{ clean_text('ydqzy') }} as major_no_before,
        {{ clean_text('ydhzy') }} as major_no_after,
        {{ clean_text('spwh') }} as approval_ref,
        try_cast(gxsj as timestamp) as modified_at,
        _batch_id as batch_id
    from source
)

select * from renamed
