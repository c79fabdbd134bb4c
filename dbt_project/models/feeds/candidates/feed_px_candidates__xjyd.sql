-- XJYD 学籍异动, shaped as PX-1.0 before the quality gate.
-- Scope: the 异动 of the students XSJBXX sends (XH must exist on the platform, PX-E016).
with

changes as (
    select * from {{ ref('fct_student_status_change') }}
),

sent_students as (
    select record_key as student_no from {{ ref('feed_px_candidates__xsjbxx') }}
)

select
    changes.change_no as record_key,
    changes.batch_id,
    {{ px_text('changes.change_no') }} as ydbh,
    {{ px_text('changes.student_no') }} as xh,
    {{ px_text('changes.change_kind_code') }} as ydlbm,
    {{ px_text('changes.change_reason_code') }} as ydyym,
    {{ px_date('changes.changed_on') }} as ydrq,
    {{ px_text('changes.org_id_before') }} as ydqdwh,
    {{ px_text('changes.org_id_after') }} as ydhdwh,
    {{ px_text('changes.major_code_before') }} as ydqzydm,
    {{ px_text('changes.major_code_after') }} as ydhzydm,
    {{ px_text('changes.approval_ref') }} as spwh,
    {{ px_datetime('changes.modified_at') }} as gxsj
from changes
inner join sent_students on changes.student_no = sent_students.student_no
