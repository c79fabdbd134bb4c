{#-
  Map a source system's local value to the standard code through the crosswalk seed
  xwalk_<system> (schemas/crosswalks/xwalk_<system>.csv), honouring valid_from/valid_to on the
  row's date. A value with no mapping gives null here and is reported, never silently dropped:
  the mapped column is required in the feeds, so the row is quarantined with the rule's ID.
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
