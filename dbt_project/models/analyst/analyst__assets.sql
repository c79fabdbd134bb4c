{{ config(alias='assets') }}
-- dim_asset for analysts: the mart as it is (no personal data; columns unlisted).
select * from {{ ref('dim_asset') }}  -- noqa: AM04
