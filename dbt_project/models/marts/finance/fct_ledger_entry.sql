-- Voucher lines (凭证分录) with their voucher's 会计年度/期间 and their account's 一级科目 and
-- 余额方向.
with

lines as (
    select * from {{ ref('stg_finance__voucher_lines') }}
),

vouchers as (
    select * from {{ ref('stg_finance__vouchers') }}
),

accounts as (
    select * from {{ ref('stg_finance__accounts') }}
)

select
    lines.line_id as k_ledger_entry,
    lines.line_id,
    lines.voucher_id,
    lines.line_no,
    vouchers.fiscal_year,
    vouchers.fiscal_period,
    vouchers.voucher_date,
    lines.account_code,
    accounts.account_name,
    left(lines.account_code, 4) as gov_account_code,
    accounts.balance_direction,
    lines.org_id,
    lines.debit_amount,
    lines.credit_amount,
    lines.payee_id,
    lines.batch_id
from lines
inner join vouchers on lines.voucher_id = vouchers.voucher_id
left join accounts on lines.account_code = accounts.account_code
