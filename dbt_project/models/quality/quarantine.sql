-- Rows held back from the feeds by an error-severity rule of the quality gate, with the rule.
select distinct
    dataset,
    record_key,
    rule_id,
    field,
    value,
    source_system,
    batch_id,
    run_id,
    checked_at
from {{ gate_findings() }}
where severity = 'error'
