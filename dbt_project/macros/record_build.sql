{#- The build's identity, written at the end of every dbt invocation (dbt_project.yml,
    on-run-end): which invocation last wrote the warehouse and when it started. A published
    snapshot carries it, so a reader holding one can tell which build it reads. -#}
{% macro record_build() %}
    {% if execute and flags.WHICH in ("build", "run", "seed", "snapshot") %}
        create schema if not exists campusdx_build;
        create or replace table campusdx_build.info as
        select
            '{{ invocation_id }}' as dbt_invocation_id,
            cast('{{ run_started_at.isoformat() }}' as timestamptz) as dbt_started_at,
            '{{ flags.WHICH }}' as dbt_command;
    {% endif %}
{% endmacro %}
