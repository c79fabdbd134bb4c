{#- Rule of the school coding standard (schemas/school/school_code_rules.csv): every non-null value
    of the column fully matches the pattern of `rule` (e.g. SCH-GH 工号). One failing row per
    offending value, with how many rows carry it; one failing row if the rule ID is not in the
    seed school_code_rules (a misspelt rule must not pass silently). Fix the value at its source,
    or the rule in schemas/school/ if the school changed its standard. -#}
{% test follows_school_rule(model, column_name, rule) %}
    with school_rule as (
        select pattern
        from {{ ref('school_code_rules') }}
        where code = '{{ rule | replace("'", "''") }}'
    ),

    observed as (
        select
            cast({{ column_name }} as varchar) as value,
            count(*) as rows_with_this_value
        from {{ model }}
        where {{ column_name }} is not null
        group by 1
    )

    select
        '{{ rule | replace("'", "''") }}' as rule_id,
        observed.value,
        observed.rows_with_this_value,
        'does not follow the rule: ' || school_rule.pattern as problem
    from observed
    cross join school_rule
    where not regexp_full_match(observed.value, school_rule.pattern)

    union all

    select
        '{{ rule | replace("'", "''") }}' as rule_id,
        null as value,
        null as rows_with_this_value,
        'rule not found in school_code_rules' as problem
    where not exists (select 1 from school_rule)
{% endtest %}
