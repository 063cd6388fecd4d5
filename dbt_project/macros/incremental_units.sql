{#-
    Incremental bookkeeping of int_indicator_values_resolved (unit of work: one Eurostat dataset) and
    mart_region_benchmarks (unit of work: one indicator).

    eurostat_indicator_inputs(): one row per dataset read by a Eurostat indicator with its input_fingerprint,
    md5 over everything its rows are computed from: the batch ids of the dataset in stg_eurostat__observations,
    the definitions (whole seed rows) of the indicators reading it, the nuts_regions seed and var('as_of_date').
    The batch ids come from distinct_pairs() on the staging model's (dataset, batch_id) index.

    region_benchmark_inputs(): one row per Eurostat indicator with the md5 of its dataset's fingerprint, that of
    its LQ denominator's dataset, its seed row, the cluster_regions table (from the catalogue) and var('eu27_countries'). The dataset
    fingerprints are read from int_indicator_values_resolved itself (the rows the mart reads), so a mart built
    before or without the values it reads is recomputed once they change.
-#}
{% macro eurostat_indicator_inputs() -%}
    with batch_pairs as (
        {{ distinct_pairs(ref('stg_eurostat__observations'), 'dataset', 'batch_id') }}
    ),

    batch_lists as (
        select dataset, string_agg(batch_id, ',' order by batch_id) as batch_ids
        from batch_pairs
        group by dataset
    ),

    definitions as (
        select source_dataset as dataset, string_agg(cast(indicators as text), '|' order by indicator_code) as definition
        from {{ ref('indicators') }} as indicators
        where source_type = 'eurostat'
        group by source_dataset
    ),

    nuts as (
        select md5(coalesce(string_agg(cast(nuts_regions as text), '|' order by nuts_code), '')) as fingerprint
        from {{ ref('nuts_regions') }} as nuts_regions
    )

    select
        definitions.dataset,
        md5(concat_ws('#',
            batch_lists.batch_ids, definitions.definition, nuts.fingerprint, {{ sql_literal(var('as_of_date', none)) }},
            {{ sql_literal(code_fingerprint()) }}
        )) as input_fingerprint
    from definitions
    cross join nuts
    left join batch_lists
        on batch_lists.dataset = definitions.dataset
{%- endmacro %}

{% macro region_benchmark_inputs() -%}
    with datasets as (
        {{ distinct_pairs(ref('int_indicator_values_resolved'), 'dataset', 'input_fingerprint') }}
    ),

    cluster_regions as (
        select md5(coalesce(string_agg(cast(cluster_regions as text), '|' order by cluster_id, nuts_code), ''))
            as fingerprint
        from {{ ref('cluster_regions') }} as cluster_regions
    )

    select
        indicators.indicator_code,
        md5(concat_ws('#',
            own.input_fingerprint, lq_total.input_fingerprint, cast(indicators as text), cluster_regions.fingerprint,
            {{ sql_literal(var('eu27_countries') | join(',')) }}, {{ sql_literal(code_fingerprint()) }}
        )) as input_fingerprint
    from {{ ref('indicators') }} as indicators
    cross join cluster_regions
    left join datasets as own
        on own.dataset = indicators.source_dataset
    left join {{ ref('indicators') }} as lq_total_indicator
        on lq_total_indicator.indicator_code = indicators.lq_total_indicator_code
    left join datasets as lq_total
        on lq_total.dataset = lq_total_indicator.source_dataset
    where indicators.source_type = 'eurostat'
{%- endmacro %}

{#-
    Pre-hook of an incremental model built per unit of work (`key`: dataset, indicator_code): deletes the rows
    whose (key, input_fingerprint) is not among `inputs` (SQL with those two columns), i.e. units whose inputs
    changed or that are gone. A table from before the model was incremental (no fingerprint column) is emptied
    and gets the configured indexes (dbt creates them only with a new table). The model then computes the units
    that have no row left.
-#}
{% macro delete_stale_rows(key, inputs) -%}
    {%- if is_incremental() -%}
        {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
        delete from {{ this }} as stored
        {%- if 'input_fingerprint' in columns %}
        where not exists (
            select 1
            from ({{ inputs }}) as inputs
            where inputs.{{ key }} = stored.{{ key }}
                and inputs.input_fingerprint = stored.input_fingerprint
        )
        {%- else -%}
        ;
        {%- for index in config.get('indexes', default=[]) %}
        {{ get_create_index_sql(this, index) }};
        {%- endfor %}
        {%- endif %}
    {%- endif -%}
{%- endmacro %}

{#-
    The model's side of delete_stale_rows: the units (`key`, input_fingerprint) of `inputs` to compute. Every unit on
    a full build; on an incremental build only those with no row left after the pre-hook (new or changed inputs).
-#}
{% macro units_to_build(key, inputs) -%}
    select inputs.{{ key }}, inputs.input_fingerprint
    from ({{ inputs }}) as inputs
    {%- if is_incremental() %}
    where not exists (
        select 1 from {{ this }} as stored where stored.{{ key }} = inputs.{{ key }}
    )
    {%- endif %}
{%- endmacro %}

{#-
    The distinct (first, second) pairs of a relation with an index on (first, second), as a loose index scan: one
    index probe per pair instead of reading every row (millions at volume, a handful of pairs).
-#}
{% macro distinct_pairs(relation, first, second) -%}
    with recursive pairs as (
        (
            select {{ first }}, {{ second }}
            from {{ relation }}
            order by {{ first }}, {{ second }}
            limit 1
        )
        union all
        select next_pair.{{ first }}, next_pair.{{ second }}
        from pairs
        cross join lateral (
            select later.{{ first }}, later.{{ second }}
            from {{ relation }} as later
            where (later.{{ first }}, later.{{ second }}) > (pairs.{{ first }}, pairs.{{ second }})
            order by later.{{ first }}, later.{{ second }}
            limit 1
        ) as next_pair
    )

    select {{ first }}, {{ second }} from pairs
{%- endmacro %}

{#- The model's own SQL as part of its units' fingerprint: a changed formula recomputes every unit on the next
    build (an incremental model would otherwise keep the rows the old code wrote). -#}
{% macro code_fingerprint() -%}
    {{- local_md5(model.raw_code) if model is defined and model.raw_code is defined else '' -}}
{%- endmacro %}
