{{ config(alias='ledger_entries') }}
-- fct_ledger_entry for analysts: the mart as it is (no personal data; columns unlisted).
select * from {{ ref('fct_ledger_entry') }}  -- noqa: AM04
