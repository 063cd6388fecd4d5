{#-
    Models, seeds and snapshots land in exactly the schema they configure
    (staging, intermediate, marts, reference, snapshots) instead of dbt's
    default "<target_schema>_<custom_schema>". Without a custom schema the
    target schema (marts) is used.
    var('schema_prefix') puts a whole build beside the current one: a backfill of date D builds into asof_staging,
    asof_marts, ... (ingest/orchestration.py: dbt_run_vars) and publishes its marts into history.<mart> keyed by
    its logical_date, so the current marts stay current.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- set prefix = var('schema_prefix', none) or '' -%}
    {%- if custom_schema_name is none -%}
        {{ prefix }}{{ target.schema | trim }}
    {%- else -%}
        {{ prefix }}{{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
