-- 科目余额表 by month: every account and department from its first movement through the month
-- of the `as_of` date, months without movements included (a dense panel), so that a month's
-- opening is the previous month's closing. Balances are signed by the account's 余额方向:
-- 借 (J) closing = opening + debits - credits, 贷 (D) closing = opening - debits + credits.
-- Income and expense classes (一级科目 4xxx 收入, 5xxx 费用, 6xxx 预算收入, 7xxx 预算支出) are
-- closed into net assets at each year end: their opening in period 01 is zero. The closing
-- entries (结转) are not booked as vouchers in the source. Movements dated after the `as_of`
-- month are not in the panel.
with

entries as (
    select
        *,
        cast(fiscal_year as integer) * 12 + cast(fiscal_period as integer) - 1 as month_index
    from {{ ref('fct_ledger_entry') }}
),

movements as (
    select
        account_code,
        org_id,
        month_index,
        cast(sum(debit_amount) as decimal(18, 2)) as debit_total,
        cast(sum(credit_amount) as decimal(18, 2)) as credit_total,
        max(batch_id) as batch_id
    from entries
    group by account_code, org_id, month_index
),

as_of_month as (
    select
        year(cast('{{ var("as_of") }}' as date)) * 12 + month(cast('{{ var("as_of") }}' as date)) - 1
            as month_index
),

series as (
    select
        account_code,
        org_id,
        min(month_index) as first_month_index
    from movements
    group by account_code, org_id
),

months as (
    select unnest(range(min(series.first_month_index), max(as_of_month.month_index) + 1)) as month_index
    from series
    cross join as_of_month
),

panel as (
    select
        series.account_code,
        series.org_id,
        months.month_index
    from series
    inner join months on series.first_month_index <= months.month_index
),

accounts as (
    select * from {{ ref('stg_finance__accounts') }}
),

signed as (
    select
        panel.account_code,
        panel.org_id,
        panel.month_index,
        panel.month_index // 12 as fiscal_year_number,
        accounts.balance_direction,
        left(panel.account_code, 4) as gov_account_code,
        left(panel.account_code, 1) in ('4', '5', '6', '7') as closes_at_year_end,
        coalesce(movements.debit_total, 0) as debit_total,
        coalesce(movements.credit_total, 0) as credit_total,
        case accounts.balance_direction
            when 'J' then coalesce(movements.debit_total, 0) - coalesce(movements.credit_total, 0)
            when 'D' then coalesce(movements.credit_total, 0) - coalesce(movements.debit_total, 0)
        end as net_movement,
        movements.batch_id
    from panel
    left join movements
        on
            panel.account_code = movements.account_code
            and panel.org_id = movements.org_id
            and panel.month_index = movements.month_index
    left join accounts on panel.account_code = accounts.account_code
),

balances as (
    select
        *,
        cast(
            sum(net_movement) over (
                partition by
                    account_code,
                    org_id,
                    case when closes_at_year_end then fiscal_year_number end
                order by month_index
                rows between unbounded preceding and current row
            ) as decimal(18, 2)
        ) as closing_balance,
        max(batch_id) over (
            partition by account_code, org_id
            order by month_index
            rows between unbounded preceding and current row
        ) as last_batch_id
    from signed
)

select
    cast(fiscal_year_number as varchar)
    || '|' || lpad(cast(month_index % 12 + 1 as varchar), 2, '0')
    || '|' || account_code
    || '|' || org_id as k_account_balance_monthly,
    cast(fiscal_year_number as varchar) as fiscal_year,
    lpad(cast(month_index % 12 + 1 as varchar), 2, '0') as fiscal_period,
    account_code,
    org_id,
    gov_account_code,
    balance_direction,
    closes_at_year_end,
    cast(closing_balance - net_movement as decimal(18, 2)) as opening_balance,
    cast(debit_total as decimal(18, 2)) as debit_total,
    cast(credit_total as decimal(18, 2)) as credit_total,
    closing_balance,
    last_batch_id as batch_id
from balances
