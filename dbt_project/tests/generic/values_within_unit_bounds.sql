{#-
    Plausibility of a value for its unit (rows violating it are returned):
      - percentages (unit PC, PC_ENT, PC_EMP, PC_GDP, ... i.e. starting with 'PC') lie in [0, 100]:
        a share can never exceed 100 % nor be negative;
      - counts, amounts and per-head values (non_negative_units) are >= 0;
      - survey scores (SCORE: 1-5 means, gaps importance - satisfaction) lie in [-4, 5].
    Null values pass (a withheld value carries a quality_flag, tested separately).
-#}
{% test values_within_unit_bounds(model, column_name, unit_column='unit',
        non_negative_units=['NR', 'persons', 'MIO_EUR', 'EUR_HAB', 'PPS_EU27_2020_HAB', 'THS_T']) %}

select *
from {{ model }}
where {{ column_name }} is not null
    and (
        ({{ unit_column }} like 'PC%' and ({{ column_name }} < 0 or {{ column_name }} > 100))
        or ({{ unit_column }} in ({% for u in non_negative_units %}'{{ u }}'{% if not loop.last %}, {% endif %}{% endfor %})
            and {{ column_name }} < 0)
        or ({{ unit_column }} = 'SCORE' and ({{ column_name }} < -4 or {{ column_name }} > 5))
    )

{% endtest %}
