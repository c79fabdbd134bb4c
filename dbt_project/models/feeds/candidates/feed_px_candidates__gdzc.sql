-- GDZC 固定资产, shaped as PX-1.0 before the quality gate: every current card of dim_asset,
-- disposed ones included (ZZZT 2 已处置).
select
    asset_no as record_key,
    batch_id,
    {{ px_text('asset_no') }} as zcbh,
    {{ px_text('asset_name') }} as zcmc,
    {{ px_text('category_code') }} as fldm,
    {{ px_text('org_id') }} as dwh,
    {{ px_text('custodian_staff_no') }} as syrgh,
    {{ px_text('building_code') }} as jzwh,
    {{ px_date('acquired_on') }} as qdrq,
    {{ px_text('asset_value') }} as jz,
    {{ px_text('quantity') }} as sl,
    {{ px_text('use_status_code') }} as syzkm,
    {{ px_text('account_status_code') }} as zzzt,
    {{ px_datetime('modified_at') }} as gxsj
from {{ ref('dim_asset') }}
