-- 盘点单号 written twice in one export with different content: neither copy is taken.
select
    record_key as check_no,
    batch_id,
    copies,
    source_lines
from ({{ conflicting_copies(source('asset', 'zc_pd'), '盘点单号', lineage=['_source_file', '_source_line']) }})
