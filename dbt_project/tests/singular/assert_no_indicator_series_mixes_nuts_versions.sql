-- An indicator's regional series of one country must use codes of ONE NUTS version only:
-- codes valid only in NUTS 2021 must never sit beside codes valid only in NUTS 2024.
with

versioned as (

    select
        resolved.indicator_code,
        resolved.country_code,
        resolved.geo_code,
        nuts_regions.in_nuts_2021,
        nuts_regions.in_nuts_2024

    from {{ ref('int_indicator_values_resolved') }} as resolved
    inner join {{ ref('nuts_regions') }} as nuts_regions
        on nuts_regions.nuts_code = resolved.geo_code
    where resolved.geo_type in ('nuts1', 'nuts2', 'nuts3', 'extra_regio')

)

select
    indicator_code,
    country_code,
    string_agg(distinct geo_code, ',') filter (where in_nuts_2021 and not in_nuts_2024) as codes_2021_only,
    string_agg(distinct geo_code, ',') filter (where in_nuts_2024 and not in_nuts_2021) as codes_2024_only

from versioned
group by indicator_code, country_code
having bool_or(in_nuts_2021 and not in_nuts_2024)
    and bool_or(in_nuts_2024 and not in_nuts_2021)
