-- JZGJBXX 教职工基本信息, shaped as PX-1.0 before the quality gate.
select
    staff_no as record_key,
    batch_id,
    {{ px_text('staff_no') }} as gh,
    {{ px_text('full_name') }} as xm,
    {{ px_text('gender_code') }} as xbm,
    {{ px_date('birth_date') }} as csrq,
    {{ px_text('ethnicity_code') }} as mzm,
    {{ px_text('id_type_code') }} as sfzjlxm,
    {{ px_text('id_number') }} as sfzjh,
    {{ px_text('nationality_code') }} as gjdqm,
    {{ px_text('political_status_code') }} as zzmmm,
    {{ px_text('native_place_code') }} as jg,
    {{ px_text('org_id') }} as dwh,
    {{ px_text('staff_category_code') }} as jzglbm,
    {{ px_text('establishment_code') }} as bzlbm,
    {{ px_text('education_code') }} as zgxlm,
    {{ px_text('degree_code') }} as zgxwm,
    {{ px_text('title_code') }} as zyjszwm,
    {{ px_date('hired_on') }} as lxrq,
    {{ px_text('staff_status_code') }} as dqztm,
    {{ px_datetime('modified_at') }} as gxsj
from {{ ref('dim_staff') }}
where is_current
