-- The closing identity on every row of the monthly balances (PX-1.0 CWKMYE rule): for 借 (J)
-- accounts closing = opening + debits - credits, for 贷 (D) closing = opening - debits + credits.
select
    k_account_balance_monthly,
    balance_direction,
    opening_balance,
    debit_total,
    credit_total,
    closing_balance
from {{ ref('fct_account_balance_monthly') }}
where
    balance_direction is null
    or closing_balance is null
    or closing_balance != case balance_direction
        when 'J' then opening_balance + debit_total - credit_total
        when 'D' then opening_balance - debit_total + credit_total
    end
