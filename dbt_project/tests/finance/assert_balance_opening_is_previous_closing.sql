-- A month's opening is the previous month's closing, for every account and department; the
-- panel is dense, so the previous month is always there. Exceptions: the first month of a
-- series opens at zero, and so does period 01 of an income or expense class (closed into net
-- assets at year end).
with

balances as (
    select
        *,
        lag(closing_balance) over (
            partition by account_code, org_id order by fiscal_year, fiscal_period
        ) as previous_closing,
        lag(fiscal_year || fiscal_period) over (
            partition by account_code, org_id order by fiscal_year, fiscal_period
        ) as previous_month
    from {{ ref('fct_account_balance_monthly') }}
)

select
    k_account_balance_monthly,
    previous_month,
    previous_closing,
    opening_balance,
    closes_at_year_end
from balances
where
    case
        when previous_month is null then opening_balance != 0
        when closes_at_year_end and fiscal_period = '01' then opening_balance != 0
        else opening_balance != previous_closing
    end
    -- the panel is dense: the month before is the previous row
    or previous_month != strftime(
        make_date(cast(fiscal_year as integer), cast(fiscal_period as integer), 1) - interval 1 month, '%Y%m'
    )
