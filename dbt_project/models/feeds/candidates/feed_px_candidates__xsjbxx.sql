-- XSJBXX 学生基本信息, shaped as PX-1.0 before the quality gate.
-- Scope: undergraduates. PX-1.0's ZYDM is the 本科专业目录, so a doctoral student's 学科专业
-- code cannot be sent; graduate students stay in dim_student (see README, "What is sent").
select
    student_no as record_key,
    batch_id,
    {{ px_text('student_no') }} as xh,
    {{ px_text('full_name') }} as xm,
    {{ px_text('gender_code') }} as xbm,
    {{ px_date('birth_date') }} as csrq,
    {{ px_text('ethnicity_code') }} as mzm,
    {{ px_text('id_type_code') }} as sfzjlxm,
    {{ px_text('id_number') }} as sfzjh,
    {{ px_text('nationality_code') }} as gjdqm,
    {{ px_text('political_status_code') }} as zzmmm,
    {{ px_text('origin_region_code') }} as sydm,
    {{ px_text('org_id') }} as dwh,
    {{ px_text('major_code') }} as zydm,
    {{ px_text('training_level_code') }} as pyccm,
    {{ px_text('study_years') }} as xz,
    {{ px_text('grade') }} as nj,
    {{ px_text('class_no') }} as bh,
    {{ px_date('enrolled_on') }} as rxrq,
    {{ px_text('student_status_code') }} as xsdqztm,
    case when student_status_code in ('01', '05') then '1' else '0' end as sfzx,
    {{ px_datetime('modified_at') }} as gxsj
from {{ ref('dim_student') }}
where
    is_current
    and training_level_code = '3'  -- JY/T 1001 培养层次 本科
