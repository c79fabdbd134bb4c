{{ config(alias='stats_fixed_assets') }}
-- mart_stats__fixed_assets for analysts: the mart as it is (no personal data; columns unlisted).
select * from {{ ref('mart_stats__fixed_assets') }}  -- noqa: AM04
