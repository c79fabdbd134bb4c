with

source as (
    {{ latest_version(source('hr', 'hr_staff'), 'staff_no', 'modified_at') }}
),

renamed as (
    select
        {{ clean_text('staff_no') }} as staff_no,
        {{ clean_text('name') }} as full_name,
        {{ coded('hr', 'gender', 'gender', 'gender_local', 'gender_code') }},
        {{ parse_date('birth_date') }} as birth_date,
        {{ coded('hr', 'nation', 'nation', 'ethnicity_local', 'ethnicity_code') }},
        {{ coded('hr', 'id_type', 'id_type', 'id_type_local', 'id_type_code') }},
        {{ normalise_id_number('id_no') }} as id_number,
        {{ coded('hr', 'nationality', 'nationality', 'nationality_local', 'nationality_code') }},
        {{ coded('hr', 'politics', 'politics', 'political_status_local', 'political_status_code') }},
        {{ clean_text('native_place') }} as native_place_code,
        {{ clean_text('org_id') }} as org_id,
        {{ coded('hr', 'category', 'category', 'staff_category_local', 'staff_category_code') }},
        {{ coded('hr', 'establishment', 'establishment', 'establishment_local', 'establishment_code') }},
        {{ coded('hr', 'education', 'education', 'education_local', 'education_code') }},
        {{ coded('hr', 'degree', 'degree', 'degree_local', 'degree_code') }},
        {{ coded('hr', 'title', 'title', 'title_local', 'title_code') }},
        {{ parse_date('hire_date') }} as hired_on,
        {{ coded('hr', 'status', 'status', 'staff_status_local', 'staff_status_code') }},
        try_cast(modified_at as timestamp) as modified_at,
        _batch_id as batch_id
    from source
)

select * from renamed
