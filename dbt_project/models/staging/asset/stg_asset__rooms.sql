with

source as (
    {{ latest_version(source('asset', 'zc_fj'), '房间编码', '修改时间', lineage=['_source_file', '_source_line']) }}
),

renamed as (
    select
        {{ clean_text('房间编码') }} as room_code,
        {{ clean_text('楼宇代码') }} as building_code,
        {{ clean_text('房间号') }} as room_no,
        {{ clean_text('房间名称') }} as room_name,
        try_cast(使用面积 as decimal(10, 2)) as usable_area_m2,
        {{ clean_text('用途') }} as room_use,
        {{ clean_text('负责人') }} as keeper_name,
        try_cast(修改时间 as timestamp) as modified_at,
        _source_file as source_file,
        _source_line as source_line,
        _batch_id as batch_id
    from source
)

select * from renamed
