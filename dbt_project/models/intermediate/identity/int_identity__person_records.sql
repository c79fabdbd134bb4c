-- Every person record of every source system that carries a document number, keyed by
-- document type + normalised number (the staging models normalise it: half-width, upper-case
-- X, no blanks). 财务's payee master has no document type column: a payee takes the type of
-- the staff record its 工号 names, else 居民身份证 ('1').
with

staff as (
    select * from {{ ref('stg_hr__staff') }}
),

students as (
    select * from {{ ref('stg_student__students') }}
),

payees as (
    select * from {{ ref('stg_finance__payees') }}
),

records as (
    select
        'hr' as source_system,
        staff_no as local_id,
        id_type_code,
        id_number,
        full_name,
        gender_code,
        birth_date,
        ethnicity_code
    from staff
    union all
    select
        'student' as source_system,
        student_no as local_id,
        id_type_code,
        id_number,
        full_name,
        gender_code,
        birth_date,
        ethnicity_code
    from students
    union all
    select
        'finance' as source_system,
        payees.payee_no as local_id,
        coalesce(staff.id_type_code, '1') as id_type_code,
        payees.id_number,
        payees.full_name,
        null as gender_code,
        null as birth_date,
        null as ethnicity_code
    from payees
    left join staff on payees.staff_no = staff.staff_no
)

select
    id_type_code || ':' || id_number as person_key,
    *
from records
where id_type_code is not null and id_number is not null
