with

lines as (
    select * from {{ ref('stg_finance__voucher_lines') }}
),

vouchers as (
    select * from {{ ref('stg_finance__vouchers') }}
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
    lines.org_id,
    lines.debit_amount,
    lines.credit_amount,
    lines.payee_id
from lines
inner join vouchers on lines.voucher_id = vouchers.voucher_id
