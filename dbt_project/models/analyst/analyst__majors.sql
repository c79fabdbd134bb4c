{{ config(alias='majors') }}
-- dim_major for analysts: the mart as it is (no personal data; columns unlisted).
select * from {{ ref('dim_major') }}  -- noqa: AM04
