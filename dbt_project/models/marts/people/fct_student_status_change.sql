with

changes as (
    select * from {{ ref('stg_student__status_changes') }}
),

majors as (
    select * from {{ ref('dim_major') }}
)

select
    changes.change_no as k_student_status_change,
    changes.change_no,
    changes.student_no,
    changes.change_kind_code,
    changes.change_reason_code,
    changes.changed_on,
    changes.org_id_before,
    changes.org_id_after,
    changes.major_no_before,
    before_major.major_code as major_code_before,
    changes.major_no_after,
    after_major.major_code as major_code_after,
    changes.approval_ref,
    changes.modified_at,
    changes.batch_id
from changes
left join majors as before_major on changes.major_no_before = before_major.major_no
left join majors as after_major on changes.major_no_after = after_major.major_no
