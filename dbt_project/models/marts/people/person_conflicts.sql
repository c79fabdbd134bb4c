-- Facts two source systems record differently for one person: every record's value, and the
-- value dim_person believes (the highest-ranked system's). Listed, never hidden: the fix is
-- at the losing system.
with

facts as (
    select * from {{ ref('int_identity__person_facts') }}
),

disputed as (
    select
        person_key,
        attribute,
        first(fact_value order by authority_rank, local_id) as chosen_value,
        first(source_system order by authority_rank, local_id) as chosen_system
    from facts
    group by person_key, attribute
    having count(distinct fact_value) > 1
)

select
    facts.person_key || '|' || facts.attribute || '|' || facts.source_system || '|' || facts.local_id
        as k_person_conflict,
    facts.person_key,
    facts.attribute,
    facts.source_system,
    facts.local_id,
    facts.fact_value,
    facts.authority_rank,
    disputed.chosen_value,
    disputed.chosen_system,
    facts.fact_value = disputed.chosen_value as is_chosen
from facts
inner join disputed on facts.person_key = disputed.person_key and facts.attribute = disputed.attribute
