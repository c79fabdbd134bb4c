{{ config(alias='student_status_changes') }}
-- fct_student_status_change for analysts: the mart as it is (no personal data; columns unlisted).
select * from {{ ref('fct_student_status_change') }}  -- noqa: AM04
