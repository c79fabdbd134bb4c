{{ config(alias='students') }}
-- dim_student in full (names, 身份证件号): for the few who are granted the restricted schema.
select * from {{ ref('dim_student') }}  -- noqa: AM04
