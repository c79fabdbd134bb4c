-- CWKMYE 财务科目余额, shaped as PX-1.0 before the quality gate: every month of the balance
-- panel (fct_account_balance_monthly), amounts as text with two decimals.
with

balances as (
    select * from {{ ref('fct_account_balance_monthly') }}
),

accounts as (
    select * from {{ ref('stg_finance__accounts') }}
)

select
    balances.fiscal_year
    || '|' || balances.fiscal_period
    || '|' || balances.account_code
    || '|' || balances.org_id as record_key,
    balances.batch_id,
    {{ px_text('balances.fiscal_year') }} as kjnd,
    {{ px_text('balances.fiscal_period') }} as kjqj,
    {{ px_text('balances.account_code') }} as kmdm,
    {{ px_text('accounts.account_name') }} as kmmc,
    {{ px_text('balances.org_id') }} as dwh,
    {{ px_text('balances.opening_balance') }} as qcye,
    {{ px_text('balances.debit_total') }} as jffse,
    {{ px_text('balances.credit_total') }} as dffse,
    {{ px_text('balances.closing_balance') }} as qmye,
    {{ px_text('balances.balance_direction') }} as yefx
from balances
left join accounts on balances.account_code = accounts.account_code
