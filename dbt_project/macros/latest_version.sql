{#-
  Keep the newest landed version of each key: the highest cursor, then the latest batch.
  Incremental extraction lands a row again when it changes (and re-reads the watermark row on
  purpose), so the landing zone holds several versions of a key; staging shows one.
-#}
{% macro latest_version(key, cursor) -%}
    qualify row_number() over (
        partition by {{ key }}
        order by {{ cursor }} desc, _batch_id desc
    ) = 1
{%- endmacro %}
