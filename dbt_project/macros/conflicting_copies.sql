{#-
  Keys landed more than once in one batch with different content (CDX-E014 at the source).

  A file export sometimes writes a line twice after an edit: the same key, another value. Which
  copy is right is unknown, so neither is taken: the staging model leaves the key of that batch
  out and the quarantine lists it, with the lines, until an export without the conflict lands.
  Identical copies are harmless (latest_version keeps one). One row per key and batch.
-#}
{% macro conflicting_copies(relation, key, lineage=[]) -%}
    {%- set ignored = ['_batch_id', '_deleted'] + lineage -%}
    select
        {{ key }} as record_key,
        _batch_id as batch_id,
        count(*) as copies,
        string_agg(cast(_source_line as varchar), ', ' order by _source_line) as source_lines
    from (
        select
            {{ key }},
            _batch_id,
            _source_line,
            hash(*columns(* exclude ({{ ignored | join(', ') }}))) as content
        from {{ relation }}
    )
    group by {{ key }}, _batch_id
    having count(distinct content) > 1
{%- endmacro %}
