{#- Tiny replacement for dbt_utils.expression_is_true: returns the rows violating `expression`. -#}
{% test expression_is_true(model, expression) %}

select *
from {{ model }}
where not ({{ expression }})

{% endtest %}
