{{ config(alias='stats_staff') }}
-- mart_stats__staff for analysts: the mart as it is (no personal data; columns unlisted).
select * from {{ ref('mart_stats__staff') }}  -- noqa: AM04
