-- A cluster region must exist in the NUTS version it is declared in.
select cluster_regions.*
from {{ ref('cluster_regions') }} as cluster_regions
left join {{ ref('nuts_regions') }} as nuts_regions
    on nuts_regions.nuts_code = cluster_regions.nuts_code
where nuts_regions.nuts_code is null
    or (cluster_regions.nuts_version = '2021' and not nuts_regions.in_nuts_2021)
    or (cluster_regions.nuts_version = '2024' and not nuts_regions.in_nuts_2024)
