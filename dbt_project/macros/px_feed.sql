{#-
  A PX-1.0 feed: the candidate rows of one dataset (feed_px_candidates__<dataset>, in
  models/feeds/candidates/) less the rows the quality gate quarantined, with the columns named
  and ordered exactly as the model's YAML (generated from schemas/exchange/px-1.0/datasets.yaml)
  declares them.
-#}
{% macro px_feed(candidate, dataset) -%}
    select
    {%- if model is defined %}
        {%- for column in model.columns.values() %}
        candidate.{{ column.name | lower }} as {{ adapter.quote(column.name) }}{{ "," if not loop.last }}
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
