{#-
  Map a source system's local value to the standard code through the crosswalk seed
  xwalk_<system> (schemas/crosswalks/xwalk_<system>.csv), honouring valid_from/valid_to on the
  row's date (``on_date``: a column or expression; today by default).
-#}
{% macro crosswalk(system, field, column, on_date="current_date") -%}
    (
        select xw.code
        from {{ ref('xwalk_' ~ system) }} as xw
        where
            xw.field = '{{ field }}'
            and xw.source_value = trim({{ column }})
            and (xw.valid_from is null or xw.valid_from <= {{ on_date }})
            and (xw.valid_to is null or {{ on_date }} < xw.valid_to)
    )
{%- endmacro %}

{#-
  A coded field as staging delivers it: two columns, the source's own value (trimmed, empty =
  null) and the standard code the crosswalk gives it.

      {{ coded('hr', 'gender', 'gender', 'gender_local', 'gender_code') }},

  Every call is declared in the model's YAML, on the code column, with the same four names:

      - name: gender_code
        config:
          meta:
            coded: {crosswalk: hr, field: gender, source_column: gender, local_column: gender_local}

  and the model does not compile while the declaration is missing or differs. A value with no
  mapping gives a null code next to a non-null local value. It is never silently dropped: the
  model `unmapped_codes` lists each such value with its rows, from these declarations; a
  required PX field left empty by it is quarantined by the gate (CDX-E010).
-#}
{% macro coded(system, field, column, local_as, code_as, on_date="current_date") -%}
    {%- if execute and model.resource_type == 'model' -%}
        {%- do check_coded_declared(system, field, column, local_as, code_as) -%}
    {%- endif -%}
    {{ clean_text(column) }} as {{ local_as }},
    {{ crosswalk(system, field, column, on_date) }} as {{ code_as }}
{%- endmacro %}

{#- The `coded` declaration of a column (a properties column, or a graph node's), or none. -#}
{% macro coded_declaration(column) -%}
    {%- set config_meta = (column.get('config') or {}).get('meta') or {} -%}
    {{ return(config_meta.get('coded') or (column.get('meta') or {}).get('coded')) }}
{%- endmacro %}

{% macro check_coded_declared(system, field, column, local_as, code_as) -%}
    {%- set wanted = {
        'crosswalk': system, 'field': field, 'source_column': column, 'local_column': local_as
    } -%}
    {%- set declared = coded_declaration(model.columns.get(code_as) or {}) -%}
    {%- if declared != wanted -%}
        {{ exceptions.raise_compiler_error(
            model.name ~ ": coded('" ~ [system, field, column, local_as, code_as] | join("', '")
            ~ "') must be declared in the model's YAML: column " ~ code_as
            ~ " with config: {meta: {coded: " ~ tojson(wanted) ~ "}} (found: " ~ tojson(declared) ~ ")") }}
    {%- endif -%}
{%- endmacro %}

{#-
  The standard code of a snapshot version's local value, by the crosswalk as it stands now and
  as effective on the version's last day (today for the current version). Recomputed on every
  build, so a crosswalk entry added or corrected later re-codes the history too.
-#}
{% macro version_code(system, field, local_column) -%}
    {{ crosswalk(system, field, local_column, on_date="coalesce(cast(dbt_valid_to as date) - 1, current_date)") }}
{%- endmacro %}
