{#- A model that should be empty: every row it has is a finding (use with severity warn). -#}
{% test no_rows(model) %}
    select * from {{ model }}
{% endtest %}
