-- fct_ledger_entry is built incrementally: after every run it must hold exactly the landed
-- lines that have a voucher, each in its current version and with its voucher's and account's
-- current versions (the batches they were landed in). A row returned is a line missing, left
-- over after a deletion, or stale.
with

expected as (
    select
        voucher_lines.line_id,
        voucher_lines.batch_id,
        headers.batch_id as voucher_batch_id,
        chart.batch_id as account_batch_id
    from {{ ref('stg_finance__voucher_lines') }} as voucher_lines
    inner join {{ ref('stg_finance__vouchers') }} as headers
        on voucher_lines.voucher_id = headers.voucher_id
    left join {{ ref('stg_finance__accounts') }} as chart
        on voucher_lines.account_code = chart.account_code
),

held as (
    select
        line_id,
        batch_id,
        voucher_batch_id,
        account_batch_id
    from {{ ref('fct_ledger_entry') }}
),

missing as (
    select * from expected
    except all
    select * from held
),

left_over as (
    select * from held
    except all
    select * from expected
)

select
    'missing or stale' as problem,
    missing.line_id,
    missing.batch_id,
    missing.voucher_batch_id,
    missing.account_batch_id
from missing
union all
select
    'left over or stale' as problem,
    left_over.line_id,
    left_over.batch_id,
    left_over.voucher_batch_id,
    left_over.account_batch_id
from left_over
