-- Region set of each cluster, from the catalogue (raw.partnership_cluster_regions): configuration, never inferred
-- from one code. Grain: one row per cluster_id x nuts_code.
select
    cluster_id,
    nuts_code,
    nuts_version,
    weight_basis
from {{ source('partnership', 'partnership_cluster_regions') }}
