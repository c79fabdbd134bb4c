-- ZZJG 组织机构, shaped as PX-1.0 (all text, profile formats) before the quality gate.
select
    org_id as record_key,
    batch_id,
    {{ px_text('org_id') }} as dwh,
    {{ px_text('org_name') }} as dwmc,
    {{ px_text('org_short_name') }} as dwjc,
    {{ px_text('parent_org_id') }} as sjdwh,
    {{ px_text('org_category_code') }} as dwlbm,
    {{ px_text('campus_code') }} as xqh,
    {{ px_date('founded_on') }} as jlrq,
    {{ px_text('in_use_code') }} as sfsy
from {{ ref('dim_org') }}
