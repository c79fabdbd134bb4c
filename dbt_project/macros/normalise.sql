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

{#-
  A 身份证件号 for people who may not see it. A 居民身份证号 (18 characters) keeps its first 6, the
  行政区划 of issue, and hides the birth date, sequence and check character: with the birth year and
  the gender beside it about 180,000 numbers remain. Any other document keeps at most its first 2
  characters and never more than a quarter of them (a 12-character permit shows 2, a 7-character
  number 1).
-#}
{% macro mask_id_number(column) -%}
    case
        when {{ column }} is null then null
        when regexp_full_match({{ column }}, '[0-9]{17}[0-9X]')
            then left({{ column }}, 6) || repeat('*', 12)
        else
            left({{ column }}, least(2, length({{ column }}) // 4))
            || repeat('*', length({{ column }}) - least(2, length({{ column }}) // 4))
    end
{%- endmacro %}

{#-
  The path of the pseudonym key file (never the key): $CAMPUSDX_PSEUDONYM_KEY_FILE, else
  <home>/secrets/pseudonym.key. The dbt-duckdb plugin campusdx.pipeline.dbt_plugin makes sure it exists.
-#}
{% macro pseudonym_key_file() -%}
    {%- set default = env_var('CAMPUSDX_HOME', '../var') ~ '/secrets/pseudonym.key' -%}
    {{- env_var('CAMPUSDX_PSEUDONYM_KEY_FILE', '') or default -}}
{%- endmacro %}

{#-
  A relation of one row: the HMAC-SHA256 inner and outer pads (RFC 2104: the key zero-padded to
  the 64-byte block, xor 0x36 and 0x5c) of the pseudonym key, which DuckDB reads from the key
  file while the model builds. Only for TABLE models outside the analyst schema: a view would
  read the key whenever it is queried, and its definition would name the file.
-#}
{% macro pseudonym_key_pads() -%}
    (
        select
            unhex(array_to_string(list_transform(key_bytes, b -> printf('%02x', xor(b, 54))), '')) as ipad,
            unhex(array_to_string(list_transform(key_bytes, b -> printf('%02x', xor(b, 92))), '')) as opad
        from (
            select
                list_transform(
                    range(64), i -> coalesce(try_cast('0x' || substr(key_hex, 2 * i + 1, 2) as integer), 0)
                ) as key_bytes
            from (
                select
                    case
                        when regexp_full_match(lower(trim(content, e' \t\r\n')), '([0-9a-f]{2}){16,64}')
                            then lower(trim(content, e' \t\r\n'))
                        else error('pseudonym key file ' || filename || ' does not hold a hex key')
                    end as key_hex
                from read_text('{{ pseudonym_key_file() }}')
            )
        )
    )
{%- endmacro %}

{#-
  A person's pseudonym: the first 16 hex characters of HMAC-SHA256(key, 'person:' || person key),
  with the pads of pseudonym_key_pads() (here `pads`). Not computable without the key, so a
  guessed document number cannot be checked against it.
-#}
{% macro person_pseudonym(column, pads='pads') -%}
    left(sha256({{ pads }}.opad || unhex(sha256({{ pads }}.ipad || encode('person:' || {{ column }})))), 16)
{%- endmacro %}
