-- Fixed-asset cards (资产卡片), current version, with their standard codes: 固定资产分类代码
-- (GB/T 14885) and its name, 资产使用状况码 (SYZKM), 在账状态 (ZZZT), and the building they
-- are kept in.
with

cards as (
    select * from {{ ref('stg_asset__asset_cards') }}
),

buildings as (
    select * from {{ ref('dim_building') }}
),

classes as (
    select * from {{ ref('gb_t_14885__zcfl_subset') }}
)

select
    cards.asset_no as k_asset,
    cards.asset_no,
    cards.asset_name,
    cards.category_local,
    cards.category_code,
    classes.name as category_name,
    cards.org_id,
    cards.custodian_staff_no,
    cards.building_code,
    buildings.building_name,
    buildings.campus_code,
    cards.acquired_on,
    cards.asset_value,
    cards.quantity,
    cards.use_status_local,
    cards.use_status_code,
    cards.account_status_local,
    cards.account_status_code,
    cards.modified_at,
    cards.batch_id
from cards
left join buildings on cards.building_code = buildings.building_code
left join classes on cards.category_code = classes.code
