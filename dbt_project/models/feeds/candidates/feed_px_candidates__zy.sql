-- ZY 专业, shaped as PX-1.0 before the quality gate.
-- Scope: 本科 majors. PX-1.0's ZYDM is the 本科专业目录, so a doctoral programme's 学科专业
-- code cannot be sent (as in XSJBXX); doctoral programmes stay in dim_major.
select
    major_no as record_key,
    batch_id,
    {{ px_text('major_no') }} as xnzyh,
    {{ px_text('major_code') }} as zydm,
    {{ px_text('major_name') }} as zymc,
    {{ px_text('org_id') }} as dwh,
    {{ px_text('study_years') }} as xz,
    {{ px_text('training_level_code') }} as pyccm,
    {{ px_text('enrolling_code') }} as sfzs
from {{ ref('dim_major') }}
where training_level_code = '3'  -- JY/T 1001 培养层次 本科
