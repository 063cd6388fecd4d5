{#-
    Models, seeds and snapshots land in exactly the schema they configure
    (staging, intermediate, marts, reference, snapshots) instead of dbt's
    default "<target_schema>_<custom_schema>". Without a custom schema the
    target schema (marts) is used.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
