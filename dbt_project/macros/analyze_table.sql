{#-
    Post-hook of every model and seed (dbt_project.yml): refresh the planner statistics of a table the moment it is built,
    so models reading it in the same run get hash joins sized on real row counts (a freshly created table has no
    statistics until autovacuum gets to it, and the planner's guesses turn self-joins into nested loops at volume).
    Views have nothing to analyze: the hook renders empty and dbt skips it.
-#}
{% macro analyze_table() -%}
    {%- if config.get('materialized') in ('table', 'incremental', 'seed') -%}
        analyze {{ this }}
    {%- endif -%}
{%- endmacro %}
