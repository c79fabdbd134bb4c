select
    major_no as k_major,
    major_no,
    major_name,
    major_code,
    org_id,
    study_years,
    training_level_code,
    enrolling_code,
    modified_at,
    batch_id
from {{ ref('stg_student__majors') }}
