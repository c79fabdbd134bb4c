{#-
  The incremental strategy ``changed_keys`` (dbt calls ``get_incremental_<strategy>_sql``): the
  model's incremental select returns one row per key that changed at the source since the table
  was last built, in ``_changed_key``, with the key's current row beside it, or nulls where the
  key is gone (deleted at the source, or no longer joined). Every changed key is deleted from
  the table, then the current rows are inserted: updates, inserts and deletions in one pass, in
  the run's transaction. ``_changed_key`` is not a column of the table (the columns inserted
  are the table's: ``on_schema_change`` ignore).
-#}
{% macro get_incremental_changed_keys_sql(arg_dict) %}
    {%- set target = arg_dict["target_relation"] -%}
    {%- set temp = arg_dict["temp_relation"] -%}
    {%- set key = arg_dict["unique_key"] -%}
    {%- set columns = get_quoted_csv(arg_dict["dest_columns"] | map(attribute="name")) -%}
    delete from {{ target }} where {{ key }} in (select _changed_key from {{ temp }});
    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ temp }} where {{ key }} is not null
{% endmacro %}


{#- The newest ``column`` of the table being built incrementally (the last batch it took from a
    source), or '' when it has no row: every batch id is after it. -#}
{% macro taken_until(column) -%}
    (select coalesce(max({{ column }}), '') from {{ this }})
{%- endmacro %}
