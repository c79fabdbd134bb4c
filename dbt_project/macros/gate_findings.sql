{#-
  The findings the quality gate keeps, as Parquet under <home>/quality/: its own
  (findings/, written by expectations/gate.py) and the province's row rejections it still holds
  (platform/, written by expectations/platform.py), both in the same format (a personal field's
  value masked, with its keyed fingerprint: expectations/personal.py). Before the gate has
  ever run there are no files: the relation is then empty, with the same columns, so a bare
  `dbt build` works on a fresh checkout. A column the files lack (written by an older gate)
  reads as null.
-#}
{#- The columns of the source quality_files.findings (models/quality/_quality__sources.yml),
    the one declaration of the findings format (Python builds its Parquet schema from it). -#}
{% macro gate_findings_columns() -%}
    {%- set columns = [] -%}
    {#- graph is empty while dbt parses (execute false): no columns are needed then -#}
    {%- for node in (graph.sources.values() if execute else [])
        if node.source_name == 'quality_files' and node.name == 'findings' -%}
        {%- for name, column in node.columns.items() -%}
            {%- do columns.append((name, column.data_type)) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(columns) }}
{%- endmacro %}

{% macro gate_findings() -%}
    {%- set quality = env_var('CAMPUSDX_HOME', '../var') ~ '/quality/' -%}
    {%- set patterns = [] -%}
    {%- set present = [] -%}
    {%- if execute -%}
        {%- for folder in ['findings', 'platform'] -%}
            {%- set pattern = quality ~ folder ~ '/*.parquet' -%}
            {%- set result = run_query("select count(*) from glob('" ~ pattern ~ "')") -%}
            {%- if result.columns[0].values()[0] > 0 -%}
                {%- do patterns.append("'" ~ pattern ~ "'") -%}
            {%- endif -%}
        {%- endfor -%}
        {%- if patterns -%}
            {%- set names = run_query(
                "select distinct name from parquet_schema([" ~ patterns | join(', ') ~ "])"
            ) -%}
            {%- do present.extend(names.columns[0].values()) -%}
        {%- endif -%}
    {%- endif -%}
    {%- if patterns -%}
        (
            select
            {%- for name, type in gate_findings_columns() %}
                {{ name if name in present else 'cast(null as ' ~ type ~ ') as ' ~ name }}
                {{- "," if not loop.last }}
            {%- endfor %}
            from read_parquet([{{ patterns | join(', ') }}], union_by_name = true)
        )
    {%- else -%}
        (
            select
            {%- for name, type in gate_findings_columns() %}
                cast(null as {{ type }}) as {{ name }}{{ "," if not loop.last }}
            {%- endfor %}
            where false
        )
    {%- endif -%}
{%- endmacro %}
