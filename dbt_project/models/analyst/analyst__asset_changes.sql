{{ config(alias='asset_changes') }}
-- fct_asset_change for analysts: the mart as it is (no personal data; columns unlisted).
select * from {{ ref('fct_asset_change') }}  -- noqa: AM04
