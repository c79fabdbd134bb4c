-- Students with history (SCD2): one row per 学号 per version, from the snapshot of 学籍's
-- records. Codes are derived from the source's local values on every build (macro
-- version_code); the major's national code and level come from dim_major.
with

versions as (
    select * from {{ ref('snp_student__students') }}
),

majors as (
    select * from {{ ref('dim_major') }}
)

select
    versions.dbt_scd_id as k_student_version,
    versions.student_no,
    -- the first version known is taken to have held since enrolment (nothing earlier is known)
    case
        when
            lag(versions.dbt_valid_from)
                over (partition by versions.student_no order by versions.dbt_valid_from)
            is null
            then least(versions.dbt_valid_from, versions.enrolled_on)
        else versions.dbt_valid_from
    end as valid_from,
    versions.dbt_valid_to as valid_to,
    versions.dbt_valid_to is null as is_current,
    versions.full_name,
    {{ version_code('student', 'gender', 'versions.gender_local') }} as gender_code,
    versions.birth_date,
    {{ version_code('student', 'nation', 'versions.ethnicity_local') }} as ethnicity_code,
    {{ version_code('student', 'id_type', 'versions.id_type_local') }} as id_type_code,
    versions.id_number,
    {{ version_code('student', 'nationality', 'versions.nationality_local') }} as nationality_code,
    {{ version_code('student', 'politics', 'versions.political_status_local') }} as political_status_code,
    versions.origin_region_code,
    {{ version_code('student', 'dept', 'versions.dept_local') }} as org_id,
    versions.major_no,
    majors.major_code,
    majors.training_level_code,
    majors.study_years,
    versions.grade,
    versions.class_no,
    versions.enrolled_on,
    {{ version_code('student', 'status', 'versions.student_status_local') }} as student_status_code,
    versions.modified_at,
    versions.batch_id
from versions
left join majors on versions.major_no = majors.major_no
