select
    building_code as k_building,
    building_code,
    building_name,
    campus_code,
    modified_at
from {{ ref('stg_asset__buildings') }}
