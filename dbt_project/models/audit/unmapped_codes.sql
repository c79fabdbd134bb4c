{#-
  Every source value a crosswalk could not map: one row per source system, staging model,
  field, source column and local value, with how many current rows hold it and when it was first and last
  landed. Built from every `coded(...)` call in the project's models (found in their source at
  compile time), so a new crosswalked field is covered without touching this file; the model
  refuses to compile if such a model is not listed below (dbt needs the dependency declared).
-#}
-- depends_on: {{ ref('stg_hr__org') }}
-- depends_on: {{ ref('stg_hr__staff') }}
-- depends_on: {{ ref('stg_student__departments') }}
-- depends_on: {{ ref('stg_student__majors') }}
-- depends_on: {{ ref('stg_student__students') }}
-- depends_on: {{ ref('stg_student__status_changes') }}
-- depends_on: {{ ref('stg_finance__accounts') }}
-- depends_on: {{ ref('stg_asset__asset_cards') }}
{{ config(materialized='table') }}

{%- set calls = [] -%}
{%- if execute and graph -%}
    {%- set literal = "\\s*'([^']*)'\\s*" -%}
    {%- set pattern = "coded\\(" ~ ([literal] * 5) | join(",") -%}
    {%- for node in graph.nodes.values()
        if node.resource_type == 'model' and node.unique_id != model.unique_id and 'coded(' in node.raw_code -%}
        {%- set found = modules.re.findall(pattern, node.raw_code) -%}
        {%- if found | length != node.raw_code.count('coded(') -%}
            {{ exceptions.raise_compiler_error(
                node.name ~ ": every coded(...) call must pass its five first arguments as quoted literals") }}
        {%- endif -%}
        {%- if node.unique_id not in model.depends_on.nodes -%}
            {{ exceptions.raise_compiler_error(
                "unmapped_codes: add `-- depends_on: {{ ref('" ~ node.name ~ "') }}` for its coded fields") }}
        {%- endif -%}
        {%- for system, field, column, local_as, code_as in found -%}
            {%- do calls.append((node, system, field, column, local_as, code_as)) -%}
        {%- endfor -%}
    {%- endfor -%}
{%- endif %}

{%- if calls %}
    {%- for node, system, field, column, local_as, code_as in calls %}
    select
        '{{ system }}' as source_system,
        '{{ node.name }}' as model_name,
        '{{ field }}' as field,
        '{{ column }}' as source_column,
        {{ local_as }} as source_value,
        count(*) as row_count,
        strptime(min(batch_id), '%Y%m%dT%H%M%S%fZ') as first_seen,
        strptime(max(batch_id), '%Y%m%dT%H%M%S%fZ') as last_seen
    from {{ ref(node.name) }}
    where {{ local_as }} is not null and {{ code_as }} is null
    group by all
        {%- if not loop.last %}
    union all
        {%- endif %}
    {%- endfor %}
{%- else %}
    select
        cast(null as varchar) as source_system,
        cast(null as varchar) as model_name,
        cast(null as varchar) as field,
        cast(null as varchar) as source_column,
        cast(null as varchar) as source_value,
        cast(null as bigint) as row_count,
        cast(null as timestamp) as first_seen,
        cast(null as timestamp) as last_seen
    where false
{%- endif %}
