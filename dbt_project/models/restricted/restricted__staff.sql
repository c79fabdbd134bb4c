{{ config(alias='staff') }}
-- dim_staff in full (names, 身份证件号): for the few who are granted the restricted schema.
select * from {{ ref('dim_staff') }}  -- noqa: AM04
