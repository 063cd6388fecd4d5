{#-
    Keep only the current file per cluster x wave of a survey table. Every loaded file stays in raw: a re-submitted
    (corrected) file arrives with another file_sha256 and the one it supersedes is kept for lineage.
    Current = of the files received on or before run_logical_date() (the run's date; every file when none), the
    latest arrival: its latest receipt on or before that date (audit.batch_receipts: logical date, then the time it
    was received, then the receipt order - files received by one run are received one after the other, in inbox
    path order), then the content hash; never the file name alone. A file first received after that date is
    not current, so a backfill of date D builds the survey marts as they were on D. A batch without any receipt
    (loaded before receipts were recorded) counts as received, ordered by audit.batches.created_at.
    Adds the column `is_latest_file`; filter on it downstream.
-#}
{% macro latest_survey_file(relation_cte) -%}
    {%- set as_of = run_logical_date() -%}
    select
        {{ relation_cte }}.*,
        (arrivals.batch_id is not null or known.batch_id is null) and dense_rank() over (
            partition by {{ relation_cte }}.cluster, {{ relation_cte }}.wave
            order by
                (arrivals.batch_id is not null or known.batch_id is null) desc,
                arrivals.logical_date desc nulls last,
                arrivals.received_at desc nulls last,
                arrivals.receipt_id desc nulls last,
                batches.created_at desc nulls last,
                {{ relation_cte }}.file_sha256 desc,
                {{ relation_cte }}.batch_id desc
        ) = 1 as is_latest_file
    from {{ relation_cte }}
    left join {{ source('audit', 'batches') }} as batches
        on batches.batch_id = {{ relation_cte }}.batch_id
    left join (
        select distinct on (batch_id) batch_id, logical_date, received_at, receipt_id
        from {{ source('audit', 'batch_receipts') }}
        where source = 'surveys'
            {%- if as_of %} and logical_date <= cast({{ sql_literal(as_of) }} as date){% endif %}
        order by batch_id, logical_date desc, receipt_id desc
    ) as arrivals
        on arrivals.batch_id = {{ relation_cte }}.batch_id
    left join (
        select distinct batch_id from {{ source('audit', 'batch_receipts') }} where source = 'surveys'
    ) as known
        on known.batch_id = {{ relation_cte }}.batch_id
{%- endmacro %}
