select
    org_id as k_org,
    org_id,
    org_name,
    org_short_name,
    parent_org_id,
    org_category_code,
    campus_code,
    founded_on,
    in_use_code,
    modified_at,
    batch_id
from {{ ref('stg_hr__org') }}
