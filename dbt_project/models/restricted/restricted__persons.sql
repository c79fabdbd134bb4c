{{ config(alias='persons') }}
-- dim_person in full (names, 身份证件号): for the few who are granted the restricted schema.
select * from {{ ref('dim_person') }}  -- noqa: AM04
