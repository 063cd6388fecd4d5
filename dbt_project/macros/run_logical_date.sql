{#-
    The run's logical date: var('logical_date') when given (a backfill, a unit test, a run by hand), else the
    environment variable SS4GL_LOGICAL_DATE that a nightly run sets (ingest/tasks/transform.py), else none.
    The variable is read at execution only: parsing never records it, so a new date does not make dbt re-parse
    the project (its vars and every file unchanged since the last run: partial parsing).
-#}
{% macro run_logical_date() -%}
    {%- set from_var = var('logical_date', none) -%}
    {%- if from_var -%}
        {{ return(from_var) }}
    {%- elif execute -%}
        {{ return(env_var('SS4GL_LOGICAL_DATE', '') or none) }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}
