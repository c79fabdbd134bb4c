{#-
  The current version of each key in a landed table, deleted keys left out.

  Incremental extraction lands a row again when it changes, and re-reads the watermark rows on
  purpose (late commits), so the landing zone holds several copies of a key. A copy identical
  to one landed before keeps the batch that first landed it, so re-running an unchanged
  extract changes no staging row. The newest batch then wins; within one batch a tombstone
  (``_deleted``: the key snapshot, taken after the data, no longer has the key) beats the data
  row, and a key whose newest entry is a tombstone is not shown.
-#}
{#- ``lineage``: columns that say where a copy came from (a file export's name and line), left
    out when comparing copies, so an unchanged row in a new export is not a new version. -#}
{% macro latest_version(relation, key, cursor, lineage=[]) -%}
    {%- set ignored = ['_batch_id'] + lineage -%}
    select * exclude (_deleted)
    from (
        select *
        from (
            select
                * exclude (_batch_id),
                min(_batch_id) over (
                    partition by {{ key }}, {{ cursor }}, hash(*columns(* exclude ({{ ignored | join(', ') }})))
                ) as _batch_id
            from {{ relation }}
        )
        qualify row_number() over (
            partition by {{ key }}
            order by _batch_id desc, coalesce(_deleted, false) desc, {{ cursor }} desc nulls last
        ) = 1
    )
    where not coalesce(_deleted, false)
{%- endmacro %}
