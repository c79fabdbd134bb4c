-- Voucher lines (凭证分录) with their voucher's 会计年度/期间 and their account's 一级科目 and
-- 余额方向.
--
-- Incremental: a run takes only the lines that changed since the table was last built: a line
-- landed again (new, changed or deleted at the source), or its voucher or account did; each
-- source's watermark is the newest batch the table holds of it (batches of one table land in
-- order: its extractions never overlap). The strategy changed_keys (macros/changed_keys.sql)
-- deletes those lines and inserts their current rows. The warehouse DAG rebuilds the table in
-- full on a FULL cycle, on demand and every CAMPUSDX_FULL_REBUILD_DAYS days; the data test
-- ledger_entries_are_the_landed_lines holds it to the landing zone on every run.
{{ config(
    materialized='incremental',
    incremental_strategy='changed_keys',
    unique_key='line_id',
    on_schema_change='ignore',
) }}

with

lines as (
    select * from {{ ref('stg_finance__voucher_lines') }}
),

vouchers as (
    select * from {{ ref('stg_finance__vouchers') }}
),

accounts as (
    select * from {{ ref('stg_finance__accounts') }}
),

entries as (
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
        lines.batch_id,
        vouchers.batch_id as voucher_batch_id,
        accounts.batch_id as account_batch_id
    from lines
    inner join vouchers on lines.voucher_id = vouchers.voucher_id
    left join accounts on lines.account_code = accounts.account_code
){% if is_incremental() %}
    ,

    changed as (
        select gl_fl.flid as line_id
        from {{ source('finance', 'gl_fl') }} as gl_fl
        where gl_fl._batch_id > {{ taken_until('batch_id') }}
        union
        select lines.line_id
        from lines
        where
            lines.voucher_id in (
                select gl_pz.pzid
                from {{ source('finance', 'gl_pz') }} as gl_pz
                where gl_pz._batch_id > {{ taken_until('voucher_batch_id') }}
            )
        union
        select lines.line_id
        from lines
        where
            lines.account_code in (
                select {{ clean_text('gl_kmb.kmdm') }}
                from {{ source('finance', 'gl_kmb') }} as gl_kmb
                where gl_kmb._batch_id > {{ taken_until('account_batch_id') }}
            )
    )

    select
        changed.line_id as _changed_key,
        entries.*
    from changed
    left join entries on changed.line_id = entries.line_id

{% else %}

    select * from entries

{% endif %}
