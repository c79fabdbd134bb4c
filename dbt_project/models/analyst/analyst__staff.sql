{{ config(alias='staff') }}
-- Staff with history for analysts (dim_staff): no names, 身份证件号 masked, birth year only.
select
    k_staff_version,
    staff_no,
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
    native_place_code,
    org_id,
    staff_category_code,
    establishment_code,
    education_code,
    degree_code,
    title_code,
    hired_on,
    staff_status_code,
    modified_at
from {{ ref('dim_staff') }}
