{{ config(alias='person_conflicts') }}
-- person_conflicts in full (names, 身份证件号): for the few who are granted the restricted schema.
select * from {{ ref('person_conflicts') }}  -- noqa: AM04
