{{ config(alias='persons') }}
-- People for analysts: one row per person (dim_person), no names, 身份证件号 masked, the person
-- key replaced by a pseudonym (it embeds the number).
select
    {{ person_pseudonym('k_person') }} as person_id,
    id_type_code,
    {{ mask_id_number('id_number') }} as id_number_masked,
    staff_no,
    student_no,
    payee_no,
    staff_nos,
    student_nos,
    payee_nos,
    gender_code,
    year(birth_date) as birth_year,
    ethnicity_code,
    conflicting_facts
from {{ ref('dim_person') }}
