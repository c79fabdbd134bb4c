select
    asset_no as k_asset,
    asset_no,
    asset_name,
    category_local,
    org_id,
    custodian_staff_no,
    building_code,
    acquired_on,
    asset_value,
    quantity,
    use_status_local,
    account_status_local,
    modified_at
from {{ ref('stg_asset__asset_cards') }}
