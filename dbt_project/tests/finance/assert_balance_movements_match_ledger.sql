-- The monthly balances hold every ledger movement up to the `as_of` month, and nothing else:
-- per account and department, the panel's debit and credit totals equal the ledger's.
with

ledger as (
    select
        account_code,
        org_id,
        sum(debit_amount) as debits,
        sum(credit_amount) as credits
    from {{ ref('fct_ledger_entry') }}
    where fiscal_year || fiscal_period <= strftime(cast('{{ var("as_of") }}' as date), '%Y%m')
    group by account_code, org_id
),

panel as (
    select
        account_code,
        org_id,
        sum(debit_total) as debits,
        sum(credit_total) as credits
    from {{ ref('fct_account_balance_monthly') }}
    group by account_code, org_id
)

select
    coalesce(ledger.account_code, panel.account_code) as account_code,
    coalesce(ledger.org_id, panel.org_id) as org_id,
    ledger.debits as ledger_debits,
    panel.debits as panel_debits,
    ledger.credits as ledger_credits,
    panel.credits as panel_credits
from ledger
full outer join panel
    on
        ledger.account_code = panel.account_code
        and ledger.org_id = panel.org_id
where
    ledger.debits is distinct from panel.debits
    or ledger.credits is distinct from panel.credits
