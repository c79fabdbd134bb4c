{#-
  A PX-1.0 feed: the candidate rows of one dataset (feed_px_candidates__<dataset>, in
  models/feeds/candidates/) less the rows the quality gate quarantined, with the columns named
  and ordered exactly as the model's YAML (generated from schemas/exchange/px-1.0/datasets.yaml)
  declares them.
-#}
{% macro px_feed(candidate, dataset) -%}
    select
    {%- if model is defined %}
        {%- for column in px_feed_columns() %}
        candidate.{{ column | lower }} as {{ adapter.quote(column) }}{{ "," if not loop.last }}
        {%- endfor %}
    {%- else %}
        candidate.*  {#- only when rendered outside dbt, e.g. by sqlfluff #}
    {%- endif %}
    from {{ candidate }} as candidate
    where not exists (
        select 1
        from {{ ref('quarantine') }} as quarantine
        where
            quarantine.dataset = '{{ dataset }}'
            and quarantine.record_key = candidate.record_key
    )
{%- endmacro %}

{#- The feed's columns, in order: its YAML's. A unit test of a feed names them itself (overrides:
    macros: px_feed_columns), as dbt gives a unit test no access to the model's YAML columns. -#}
{% macro px_feed_columns() -%}
    {{ return(model.columns.keys() | list) }}
{%- endmacro %}
