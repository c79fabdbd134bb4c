-- Staff with history (SCD2): one row per 工号 per version, from the snapshot of 人事's records.
-- Codes are derived from the source's local values on every build (macro version_code).
with

versions as (
    select * from {{ ref('snp_hr__staff') }}
)

select
    dbt_scd_id as k_staff_version,
    staff_no,
    -- the first version known is taken to have held since the hire date (nothing earlier is known)
    case
        when lag(dbt_valid_from) over (partition by staff_no order by dbt_valid_from) is null
            then least(dbt_valid_from, hired_on)
        else dbt_valid_from
    end as valid_from,
    dbt_valid_to as valid_to,
    dbt_valid_to is null as is_current,
    full_name,
    {{ version_code('hr', 'gender', 'gender_local') }} as gender_code,
    birth_date,
    {{ version_code('hr', 'nation', 'ethnicity_local') }} as ethnicity_code,
    {{ version_code('hr', 'id_type', 'id_type_local') }} as id_type_code,
    id_number,
    {{ version_code('hr', 'nationality', 'nationality_local') }} as nationality_code,
    {{ version_code('hr', 'politics', 'political_status_local') }} as political_status_code,
    native_place_code,
    org_id,
    {{ version_code('hr', 'category', 'staff_category_local') }} as staff_category_code,
    {{ version_code('hr', 'establishment', 'establishment_local') }} as establishment_code,
    {{ version_code('hr', 'education', 'education_local') }} as education_code,
    {{ version_code('hr', 'degree', 'degree_local') }} as degree_code,
    title_local,
    {{ version_code('hr', 'title', 'title_local') }} as title_code,
    hired_on,
    {{ version_code('hr', 'status', 'staff_status_local') }} as staff_status_code,
    modified_at,
    batch_id
from versions
