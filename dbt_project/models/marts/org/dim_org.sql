-- Organisation units (组织机构) from 人事, the school's source of record, with their place in
-- the tree: level below the university, the path of 单位号 from the root, and the 校区.
with recursive

orgs as (
    select * from {{ ref('stg_hr__org') }}
),

tree as (
    select
        org_id,
        0 as tree_level,
        [org_id] as org_path
    from orgs
    where parent_org_id is null
    union all
    select
        orgs.org_id,
        tree.tree_level + 1 as tree_level,
        list_append(tree.org_path, orgs.org_id) as org_path
    from orgs
    inner join tree on orgs.parent_org_id = tree.org_id
    where not list_contains(tree.org_path, orgs.org_id)
)

select
    orgs.org_id as k_org,
    orgs.org_id,
    orgs.org_name,
    orgs.org_short_name,
    orgs.parent_org_id,
    tree.tree_level,
    array_to_string(tree.org_path, '/') as org_path,
    orgs.org_kind_local,
    orgs.org_category_code,
    orgs.campus_code,
    orgs.founded_on,
    orgs.in_use_code,
    orgs.modified_at,
    orgs.batch_id
from orgs
left join tree on orgs.org_id = tree.org_id
