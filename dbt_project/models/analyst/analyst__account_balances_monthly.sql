{{ config(alias='account_balances_monthly') }}
-- fct_account_balance_monthly for analysts: the mart as it is (no personal data; columns unlisted).
select * from {{ ref('fct_account_balance_monthly') }}  -- noqa: AM04
