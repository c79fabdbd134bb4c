{{ config(alias='students') }}
-- Students with history for analysts (dim_student): no names, 身份证件号 masked, birth year only.
select
    k_student_version,
    student_no,
    valid_from,
    valid_to,
    is_current,
    gender_code,
    year(birth_date) as birth_year,
    ethnicity_code,
    id_type_code,
    {{ mask_id_number('id_number') }} as id_number_masked,
    nationality_code,
    political_status_code,
    origin_region_code,
    org_id,
    major_no,
    major_code,
    training_level_code,
    study_years,
    grade,
    class_no,
    enrolled_on,
    student_status_code,
    modified_at
from {{ ref('dim_student') }}
