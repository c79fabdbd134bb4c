-- Students by 培养层次, 专业, 年级 and 学籍状态 as of the `as_of` date (高等教育基层统计报表):
-- the student versions valid on that day.
with

students as (
    select * from {{ ref('dim_student') }}
    where
        valid_from <= cast('{{ var("as_of") }}' as date)
        and (valid_to is null or valid_to > cast('{{ var("as_of") }}' as date))
)

select
    cast('{{ var("as_of") }}' as date) as as_of_date,
    coalesce(training_level_code, '?') as training_level_code,
    coalesce(major_code, '?') as major_code,
    coalesce(grade, '?') as grade,
    coalesce(student_status_code, '?') as student_status_code,
    coalesce(training_level_code, '?') || '|' || coalesce(major_code, '?') || '|' || coalesce(grade, '?')
    || '|' || coalesce(student_status_code, '?') as k_stats_students,
    count(*) as students,
    count(*) filter (where gender_code = '2') as female_students
from students
group by all
