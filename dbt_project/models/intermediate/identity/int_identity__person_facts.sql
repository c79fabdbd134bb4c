-- The personal facts each system records, one row per person record and fact, with the rank
-- of that system for that fact (schemas/identity/person_authority.csv). A fact a system
-- leaves empty is not a fact.
with

records as (
    select
        person_key,
        source_system,
        local_id,
        full_name,
        gender_code,
        cast(birth_date as varchar) as birth_date,
        ethnicity_code
    from {{ ref('int_identity__person_records') }}
),

facts as (
    unpivot records
    on full_name, gender_code, birth_date, ethnicity_code
    into name attribute value fact_value
)

select
    facts.person_key,
    facts.attribute,
    facts.source_system,
    facts.local_id,
    facts.fact_value,
    authority.rank as authority_rank
from facts
inner join {{ ref('person_authority') }} as authority
    on facts.attribute = authority.attribute and facts.source_system = authority.system
