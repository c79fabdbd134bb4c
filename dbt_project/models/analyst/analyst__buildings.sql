{{ config(alias='buildings') }}
-- dim_building for analysts: the mart as it is (no personal data; columns unlisted).
select * from {{ ref('dim_building') }}  -- noqa: AM04
