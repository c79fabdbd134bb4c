{{ config(alias='orgs') }}
-- dim_org for analysts: the mart as it is (no personal data; columns unlisted).
select * from {{ ref('dim_org') }}  -- noqa: AM04
