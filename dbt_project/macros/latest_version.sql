{#-
  The newest landed version of each key: the highest cursor, then the latest batch.

  Incremental extraction lands a row again when it changes, and re-reads the watermark rows on
  purpose (late commits), so the landing zone holds several copies of a key. A copy identical
  to one landed before keeps the batch that first landed it: re-running an unchanged extract
  changes no staging row, while a genuinely different version at the same cursor still wins.
-#}
{% macro latest_version(relation, key, cursor) -%}
    select *
    from (
        select
            * exclude (_batch_id),
            min(_batch_id) over (
                partition by {{ key }}, {{ cursor }}, hash(*columns(* exclude (_batch_id)))
            ) as _batch_id
        from {{ relation }}
    )
    qualify row_number() over (
        partition by {{ key }}
        order by {{ cursor }} desc, _batch_id desc
    ) = 1
{%- endmacro %}
