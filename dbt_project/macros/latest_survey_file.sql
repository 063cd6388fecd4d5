{#-
    Keep only the latest loaded file per cluster x wave of a survey table: a re-submitted
    (corrected) survey file arrives with another file_sha256, and both files stay in raw.
    "Latest" = the batch created last in audit.batches (then the batch id, for determinism).
    Adds the column `is_latest_file` to `relation_cte` rows; filter on it downstream.
-#}
{% macro latest_survey_file(relation_cte) -%}
    select
        {{ relation_cte }}.*,
        dense_rank() over (
            partition by {{ relation_cte }}.cluster, {{ relation_cte }}.wave
            order by batches.created_at desc nulls last, {{ relation_cte }}.batch_id desc, {{ relation_cte }}.file_sha256 desc
        ) = 1 as is_latest_file
    from {{ relation_cte }}
    left join {{ source('audit', 'batches') }} as batches
        on batches.batch_id = {{ relation_cte }}.batch_id
{%- endmacro %}
