with

source as (
    {{ latest_version(source('hr', 'hr_org'), 'org_id', 'modified_at') }}
),

renamed as (
    select
        {{ clean_text('org_id') }} as org_id,
        {{ clean_text('org_name') }} as org_name,
        {{ clean_text('org_short') }} as org_short_name,
        {{ clean_text('parent_id') }} as parent_org_id,
        {{ coded('hr', 'org_kind', 'org_kind', 'org_kind_local', 'org_category_code') }},
        {{ clean_text('campus') }} as campus_code,
        {{ parse_date('founded') }} as founded_on,
        {{ coded('hr', 'in_use', 'in_use', 'in_use_local', 'in_use_code') }},
        try_cast(modified_at as timestamp) as modified_at,
        _batch_id as batch_id
    from source
)

select * from renamed
