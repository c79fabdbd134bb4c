{#-
  The quality gate's findings (written by expectations/gate.py as Parquet under
  <home>/quality/findings/). Before the gate has ever run there are no files: the relation is
  then empty, with the same columns, so a bare `dbt build` works on a fresh checkout.
-#}
{% macro gate_findings_columns() -%}
    {{ return([
        ('dataset', 'varchar'), ('record_key', 'varchar'), ('rule_id', 'varchar'),
        ('severity', 'varchar'), ('field', 'varchar'), ('value', 'varchar'),
        ('source_system', 'varchar'), ('batch_id', 'varchar'), ('run_id', 'varchar'),
        ('checked_at', 'timestamp'), ('first_seen', 'timestamp')
    ]) }}
{%- endmacro %}

{% macro gate_findings(folder='findings') -%}
    {#- folder: findings (the gate's) or platform (the province's rejections, expectations/platform.py) -#}
    {%- set pattern = env_var('CAMPUSDX_HOME', '../var') ~ '/quality/' ~ folder ~ '/*.parquet' -%}
    {%- set found = 0 -%}
    {%- if execute -%}
        {%- set result = run_query("select count(*) from glob('" ~ pattern ~ "')") -%}
        {%- set found = result.columns[0].values()[0] -%}
    {%- endif -%}
    {%- if found > 0 -%}
        (select * from read_parquet('{{ pattern }}', union_by_name = true))
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
