-- One person, one ID (一人一号): one row per document type + normalised number, with the
-- person's 工号, 学号 and 财务个人编号 and each personal fact from the system of record
-- (schemas/identity/person_authority.csv). Conflicting facts: person_conflicts. person_id is the
-- keyed pseudonym analysts see; the key is read here, in a table, never in an analyst view.
with

records as (
    select * from {{ ref('int_identity__person_records') }}
),

facts as (
    select * from {{ ref('int_identity__person_facts') }}
),

resolved as (
    select
        person_key,
        first(fact_value order by authority_rank, local_id) filter (where attribute = 'full_name')
            as full_name,
        first(fact_value order by authority_rank, local_id) filter (where attribute = 'gender_code')
            as gender_code,
        first(fact_value order by authority_rank, local_id) filter (where attribute = 'birth_date')
            as birth_date,
        first(fact_value order by authority_rank, local_id) filter (where attribute = 'ethnicity_code')
            as ethnicity_code
    from facts
    group by person_key
),

conflicts as (
    select
        person_key,
        count(distinct attribute) as conflicting_facts
    from {{ ref('person_conflicts') }}
    group by person_key
),

keys as (
    select
        person_key,
        any_value(id_type_code) as id_type_code,
        any_value(id_number) as id_number,
        list(distinct local_id order by local_id) filter (where source_system = 'hr') as staff_nos,
        list(distinct local_id order by local_id) filter (where source_system = 'student') as student_nos,
        list(distinct local_id order by local_id) filter (where source_system = 'finance') as payee_nos
    from records
    group by person_key
),

pads as (
    select * from {{ pseudonym_key_pads() }}  -- noqa: AM04
)

select
    keys.person_key as k_person,
    {{ person_pseudonym('keys.person_key') }} as person_id,
    keys.id_type_code,
    keys.id_number,
    keys.staff_nos[1] as staff_no,
    keys.student_nos[-1] as student_no,
    keys.payee_nos[1] as payee_no,
    coalesce(keys.staff_nos, []) as staff_nos,
    coalesce(keys.student_nos, []) as student_nos,
    coalesce(keys.payee_nos, []) as payee_nos,
    resolved.full_name,
    resolved.gender_code,
    cast(resolved.birth_date as date) as birth_date,
    resolved.ethnicity_code,
    coalesce(conflicts.conflicting_facts, 0) as conflicting_facts
from keys
left join resolved on keys.person_key = resolved.person_key
left join conflicts on keys.person_key = conflicts.person_key
cross join pads
