-- The cluster organisations of the partnership (tenants), from the catalogue (raw.partnership_clusters).
-- Grain: one row per cluster_id.
select
    cluster_id,
    cluster_name,
    country_code,
    seat_nuts_code,
    benchmark_level,
    role,
    language
from {{ source('partnership', 'partnership_clusters') }}
