{{ config(alias='persons') }}
-- People for analysts: one row per person (dim_person), no names, 身份证件号 masked, the person
-- key (it embeds the number) replaced by the keyed pseudonym dim_person stores: this view never
-- reads the key.
select
    person_id,
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
