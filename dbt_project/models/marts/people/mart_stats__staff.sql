-- Staff by 教职工类别, 专业技术职务, 最高学历 and age band as of the `as_of` date (高等教育
-- 基层统计报表): the staff versions valid on that day, every 当前状态. Age bands are the
-- report's: under 30, 30-34, ..., 55-59, 60 and over (age in full years on the date).
with

staff as (
    select
        *,
        date_diff('year', birth_date, cast('{{ var("as_of") }}' as date))
        - case
            when strftime(birth_date, '%m%d') > strftime(cast('{{ var("as_of") }}' as date), '%m%d') then 1
            else 0
        end as age
    from {{ ref('dim_staff') }}
    where
        valid_from <= cast('{{ var("as_of") }}' as date)
        and (valid_to is null or valid_to > cast('{{ var("as_of") }}' as date))
),

banded as (
    select
        *,
        case
            when age is null then '?'
            when age < 30 then '<30'
            when age >= 60 then '60+'
            else cast(age // 5 * 5 as varchar) || '-' || cast(age // 5 * 5 + 4 as varchar)
        end as age_band
    from staff
)

select
    cast('{{ var("as_of") }}' as date) as as_of_date,
    coalesce(staff_category_code, '?') as staff_category_code,
    coalesce(title_code, '-') as title_code,
    coalesce(education_code, '?') as education_code,
    age_band,
    coalesce(staff_status_code, '?') as staff_status_code,
    coalesce(staff_category_code, '?')
    || '|'
    || coalesce(title_code, '-')
    || '|'
    || coalesce(education_code, '?')
    || '|' || age_band || '|' || coalesce(staff_status_code, '?') as k_stats_staff,
    count(*) as staff,
    count(*) filter (where gender_code = '2') as female_staff
from banded
group by all
