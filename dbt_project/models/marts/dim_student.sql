with

students as (
    select * from {{ ref('stg_student__students') }}
),

majors as (
    select * from {{ ref('dim_major') }}
)

select
    students.student_no as k_student,
    students.student_no,
    students.full_name,
    students.gender_code,
    students.birth_date,
    students.ethnicity_code,
    students.id_type_code,
    students.id_number,
    students.nationality_code,
    students.political_status_code,
    students.origin_region_code,
    students.org_id,
    students.major_no,
    majors.major_code,
    majors.training_level_code,
    majors.study_years,
    students.grade,
    students.class_no,
    students.enrolled_on,
    students.student_status_code,
    students.modified_at,
    students.batch_id
from students
left join majors on students.major_no = majors.major_no
