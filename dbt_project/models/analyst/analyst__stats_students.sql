{{ config(alias='stats_students') }}
-- mart_stats__students for analysts: the mart as it is (no personal data; columns unlisted).
select * from {{ ref('mart_stats__students') }}  -- noqa: AM04
