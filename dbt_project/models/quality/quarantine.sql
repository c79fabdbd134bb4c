-- Rows held back from the feeds by an error-severity rule of the quality gate, with the rule.
-- Run stamps stay in the gate's findings files: an unchanged source gives an unchanged table.
select distinct
    dataset,
    record_key,
    rule_id,
    field,
    value,
    source_system,
    batch_id
from {{ gate_findings() }}
where severity = 'error'
