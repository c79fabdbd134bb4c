-- Double entry per 会计期间: debits equal credits for every (会计年度, 会计期间), as the province
-- checks on a FULL CWKMYE package (it rejects the package otherwise).
-- A warning in dbt: the books are the source's, not ours. The quality gate blocks CWKMYE on
-- it (CDX-D017) while the other datasets publish; an error here would stop the whole build.
{{ config(severity='warn') }}
select
    fiscal_year,
    fiscal_period,
    sum(debit_amount) as debits,
    sum(credit_amount) as credits
from {{ ref('fct_ledger_entry') }}
group by fiscal_year, fiscal_period
having sum(debit_amount) != sum(credit_amount)
