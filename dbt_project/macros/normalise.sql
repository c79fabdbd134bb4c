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

{#-
  A date as the source systems write it: 1998-03-05, 1998/3/5, 19980305 or 1998年3月5日, with
  blanks around. Anything else (e.g. 0000-00-00) gives null: the feed's required-field rule
  then quarantines the row, naming the field.
-#}
{% macro parse_date(column) -%}
    cast(
        coalesce(
            try_strptime(trim({{ column }}), '%Y-%m-%d'),
            try_strptime(trim({{ column }}), '%Y/%m/%d'),
            try_strptime(trim({{ column }}), '%Y%m%d'),
            try_strptime(trim({{ column }}), '%Y年%m月%d日')
        ) as date
    )
{%- endmacro %}

{#- A 身份证件号 for people who may not see it: the first 6 and last 4 characters, the rest '*'. -#}
{% macro mask_id_number(column) -%}
    case
        when {{ column }} is null then null
        when length({{ column }}) <= 10 then repeat('*', length({{ column }}))
        else left({{ column }}, 6) || repeat('*', length({{ column }}) - 10) || right({{ column }}, 4)
    end
{%- endmacro %}

{#- A stable pseudonymous key for a person key that embeds a document number. -#}
{% macro person_pseudonym(column) -%}
    left(sha256('campusdx-person:' || {{ column }}), 16)
{%- endmacro %}
