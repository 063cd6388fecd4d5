-- Baseline and target per cluster and indicator within the 5-year strategy window, from the catalogue
-- (raw.partnership_strategy_targets; values exactly as written there). Grain: one row per cluster_id x indicator_code.
select
    cluster_id,
    indicator_code,
    baseline_year,
    baseline_value,
    target_year,
    target_value
from {{ source('partnership', 'partnership_strategy_targets') }}
