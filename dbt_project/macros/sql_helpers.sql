{#-
    Numeric helpers (Postgres).
    - clean_numeric: round to `scale` decimals (optional) and drop trailing zeros, so values
      compare and display canonically (40400.000 -> 40400). trim_scale needs Postgres >= 13.
    - safe_divide: numerator / denominator, null when the denominator is 0 or null.
-#}
{% macro clean_numeric(expression, scale=none) -%}
    {%- if scale is none -%}
        trim_scale(cast({{ expression }} as numeric))
    {%- else -%}
        trim_scale(round(cast({{ expression }} as numeric), {{ scale }}))
    {%- endif -%}
{%- endmacro %}

{% macro safe_divide(numerator, denominator) -%}
    (cast({{ numerator }} as numeric) / nullif(cast({{ denominator }} as numeric), 0))
{%- endmacro %}

{#- A Jinja value as a SQL string literal (quotes escaped), or null. -#}
{% macro sql_literal(value) -%}
    {%- if value is none or value == '' -%}
        null
    {%- else -%}
        '{{ value | string | replace("'", "''") }}'
    {%- endif -%}
{%- endmacro %}

{#- A Jinja list as comma-separated SQL string literals (for `in (...)`). -#}
{% macro sql_text_list(values) -%}
    {%- for value in values %}{{ sql_literal(value) }}{{ ', ' if not loop.last }}{% endfor -%}
{%- endmacro %}
