with

source as (
    {{ latest_version(source('hr', 'hr_staff'), 'staff_no', 'modified_at') }}
),

renamed as (
    select
        {{ clean_text('staff_no') }} as staff_no,
        {{ clean_text('name') }} as full_name,
        {{ crosswalk('hr', 'gender', 'gender') }} as gender_code,
        {{ parse_date('birth_date') }} as birth_date,
        {{ crosswalk('hr', 'nation', 'nation') }} as ethnicity_code,
        {{ crosswalk('hr', 'id_type', 'id_type') }} as id_type_code,
        {{ normalise_id_number('id_no') }} as id_number,
        {{ crosswalk('hr', 'nationality', 'nationality') }} as nationality_code,
        {{ crosswalk('hr', 'politics', 'politics') }} as political_status_code,
        {{ clean_text('native_place') }} as native_place_code,
        {{ clean_text('org_id') }} as org_id,
        {{ crosswalk('hr', 'category', 'category') }} as staff_category_code,
        {{ crosswalk('hr', 'establishment', 'establishment') }} as establishment_code,
        {{ crosswalk('hr', 'education', 'education') }} as education_code,
        {{ crosswalk('hr', 'degree', 'degree') }} as degree_code,
        {{ clean_text('title') }} as title_local,
        {{ crosswalk('hr', 'title', 'title') }} as title_code,
        {{ parse_date('hire_date') }} as hired_on,
        {{ crosswalk('hr', 'status', 'status') }} as staff_status_code,
        try_cast(modified_at as timestamp) as modified_at,
        _batch_id as batch_id
    from source
)

select * from renamed
