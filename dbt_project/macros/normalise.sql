{#- 身份证件号 as the standard wants it: half-width, upper-case X, no spaces. -#}
{% macro normalise_id_number(column) -%}
    nullif(
        upper(
            translate(
                replace(trim({{ column }}), ' ', ''),
                '０１２３４５６７８９Ｘｘ',
                '0123456789XX'
            )
        ),
        ''
    )
{%- endmacro %}

{#- Text with surrounding blanks removed; empty text becomes null. -#}
{% macro clean_text(column) -%}
    nullif(trim({{ column }}), '')
{%- endmacro %}

{#- PX-1.0 value formats: date YYYY-MM-DD, datetime YYYY-MM-DD HH:MM:SS, empty = no value. -#}
{% macro px_date(column) -%}
    coalesce(strftime({{ column }}, '%Y-%m-%d'), '')
{%- endmacro %}

{% macro px_datetime(column) -%}
    coalesce(strftime({{ column }}, '%Y-%m-%d %H:%M:%S'), '')
{%- endmacro %}

{% macro px_text(column) -%}
    coalesce(cast({{ column }} as varchar), '')
{%- endmacro %}
