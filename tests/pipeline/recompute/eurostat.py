"""Eurostat building blocks, from the documentation of int_indicator_values_resolved (indicator values per geo and
year: dims filter, shares and their quality rules, one NUTS version per indicator and country) and of
int_cluster_indicators_aggregated (a cluster's value: EU27 for EU-level clusters, its country for national-only
data, else its regions summed or weighted by population / GDP of one weight year)."""

from __future__ import annotations

import re
from collections import defaultdict
from fractions import Fraction

from tests.pipeline.recompute.inputs import Inputs

EU27 = "EU27_2020"
SUBNATIONAL = ("nuts1", "nuts2", "nuts3", "extra_regio")
SHARE_DIMS = ("numerator_filter", "denominator_filter", "complement_filter")


def dims_filter(text: str) -> dict[str, str]:
    """'k=v;k=v' -> {k: v}."""
    return dict(part.split("=", 1) for part in (text or "").split(";") if part)


def members(text: str | None) -> tuple[str | None, set[str]]:
    """'k=v1|v2' -> (k, {v1, v2}); None -> (None, set())."""
    if not text:
        return None, set()
    dim, values = text.split("=", 1)
    return dim, set(values.split("|"))


def cell_flags(obs: dict) -> dict[str, bool]:
    status, conf = obs["obs_status"] or "", (obs["conf_status"] or "").upper()
    return {
        "is_provisional": "p" in status,
        "is_estimated": "e" in status,
        "is_break": "b" in status,
        "is_confidential": "C" in conf,
    }


def any_flags(cells) -> dict[str, bool]:
    flags = [cell_flags(c) for c in cells]
    return {
        name: any(f[name] for f in flags) for name in ("is_provisional", "is_estimated", "is_break", "is_confidential")
    }


def geo_type(code: str, nuts: dict) -> str:
    """The nuts_regions seed's geo_type, else inferred from the code's shape."""
    if code in nuts:
        return nuts[code]["geo_type"]
    if "_" in code or re.match(r"^(EU|EA|EFTA)", code):
        return "aggregate"
    if re.search(r"ZZZ?$", code):
        return "extra_regio"
    return {2: "country", 3: "nuts1", 4: "nuts2", 5: "nuts3"}.get(len(code), "aggregate")


def annual_cells(inputs: Inputs) -> dict[str, list[dict]]:
    """Annual observations (time = YYYY) per dataset, with their year."""
    out: dict[str, list[dict]] = defaultdict(list)
    for obs in inputs.observations:
        if re.fullmatch(r"[0-9]{4}", obs["time"]):
            out[obs["dataset"]].append({**obs, "year": int(obs["time"])})
    return out


def share_value(cells: list[dict], indicator: dict, tolerance: Fraction) -> tuple[Fraction | None, str | None]:
    """100 x sum(numerator classes) / denominator, computed only from ONE complete, consistent slice; else
    (None, the first rule broken), in the order the rules are documented."""
    (num_dim, num), (den_dim, den), (comp_dim, comp) = (members(indicator[c]) for c in SHARE_DIMS)
    share_dims = {num_dim, den_dim, comp_dim} - {None}

    def part(dim, wanted):
        return [c for c in cells if dim and c["dims"].get(dim) in wanted]

    num_cells, den_cells, comp_cells = part(num_dim, num), part(den_dim, den), part(comp_dim, comp)

    def complete(part_cells, dim, wanted):
        """every class reported once, with a value"""
        reported = {c["dims"][dim] for c in part_cells if c["value"] is not None}
        return len(part_cells) == len(wanted) and reported == wanted

    slices = {tuple(sorted((k, v) for k, v in c["dims"].items() if k not in share_dims)) for c in cells}
    numerator = sum((c["value"] for c in num_cells if c["value"] is not None), Fraction(0))
    denominator = sum((c["value"] for c in den_cells if c["value"] is not None), Fraction(0))
    complement = sum((c["value"] for c in comp_cells if c["value"] is not None), Fraction(0))
    if len(slices) > 1:
        return None, "share_mixed_slices"
    if not complete(num_cells, num_dim, num):
        return None, "share_numerator_incomplete"
    if not complete(den_cells, den_dim, den):
        return None, "share_denominator_missing"
    if any(c["value"] is not None and c["value"] < 0 for c in cells):
        return None, "share_negative_component"
    if denominator == 0:
        return None, "share_denominator_zero"
    if numerator > denominator:
        return None, "share_above_100"
    if comp and not complete(comp_cells, comp_dim, comp):
        return None, "share_complement_missing"
    if comp and abs(numerator + complement - denominator) > tolerance * denominator:
        return None, "share_components_inconsistent"
    return 100 * numerator / denominator, None


def indicator_geo_values(inputs: Inputs) -> dict[tuple, dict]:
    """(indicator, geo, year) -> {value, quality_flag, flags, geo_type, country_code, nuts_version} for every
    Eurostat indicator, before the NUTS-version choice."""
    cells_by_dataset = annual_cells(inputs)
    nuts = inputs.seed("nuts_regions", "nuts_code")
    out = {}
    for indicator in inputs.seeds["indicators"]:
        if indicator["source_type"] != "eurostat":
            continue
        wanted = dims_filter(indicator["dims_filter"])
        cells = [
            c
            for c in cells_by_dataset[indicator["source_dataset"]]
            if all(c["dims"].get(k) == v for k, v in wanted.items())
        ]
        code = indicator["indicator_code"]
        if indicator["computation"] == "value":
            for cell in cells:
                key = (code, cell["geo"], cell["year"])
                assert key not in out, f"{code}: the dims filter selects two series for {key}"
                out[key] = {"value": cell["value"], "quality_flag": None, **cell_flags(cell)}
        else:
            classes = [members(indicator[c]) for c in SHARE_DIMS if indicator[c]]
            by_geo_year = defaultdict(list)
            for cell in cells:
                if any(cell["dims"].get(dim) in values for dim, values in classes):
                    by_geo_year[(cell["geo"], cell["year"])].append(cell)
            for (geo, year), share_cells in by_geo_year.items():
                value, flag = share_value(share_cells, indicator, inputs.vars["share_partition_tolerance"])
                out[(code, geo, year)] = {"value": value, "quality_flag": flag, **any_flags(share_cells)}
    for (_, geo, _), row in out.items():
        row["geo_type"] = geo_type(geo, nuts)
        row["country_code"] = geo[:2] if row["geo_type"] != "aggregate" else None
    return out


def resolved_values(inputs: Inputs) -> dict[tuple, dict]:
    """One NUTS version per indicator and country: the version whose version-exclusive codes carry the most
    recent data (NUTS 2024 on a tie); codes valid in both versions, unknown codes, countries and aggregates are
    kept either way. Adds nuts_version ('2021' | '2024' | 'both' | 'unknown' | 'n/a')."""
    values = indicator_geo_values(inputs)
    nuts = inputs.seed("nuts_regions", "nuts_code")
    latest = defaultdict(dict)  # (indicator, country) -> {version: latest year of its exclusive codes}
    for (code, geo, year), row in values.items():
        seed = nuts.get(geo)
        if row["geo_type"] in SUBNATIONAL and seed and seed["in_nuts_2021"] != seed["in_nuts_2024"]:
            version = "2024" if seed["in_nuts_2024"] else "2021"
            versions = latest[(code, row["country_code"])]
            versions[version] = max(versions.get(version, year), year)
    out = {}
    for (code, geo, year), row in values.items():
        seed = nuts.get(geo)
        versions = latest.get((code, row["country_code"]), {})
        chosen = None
        if "2024" in versions and versions["2024"] >= versions.get("2021", 0):
            chosen = "2024"
        elif "2021" in versions:
            chosen = "2021"
        if row["geo_type"] not in SUBNATIONAL:
            version = "n/a"
        elif seed is None:
            version = "unknown"
        elif chosen:
            if not seed[f"in_nuts_{chosen}"]:
                continue  # a code of the other version: dropped
            version = chosen
        else:
            version = (
                "both"
                if seed["in_nuts_2021"] and seed["in_nuts_2024"]
                else ("2021" if seed["in_nuts_2021"] else "2024")
            )
        out[(code, geo, year)] = {**row, "nuts_version": version}
    return out


def cluster_geos(inputs: Inputs, cluster: dict, indicator: dict) -> tuple[str, str, list[tuple[str, str]]]:
    """(geo_scope, aggregation, [(geo, weight_basis)]) of a cluster for an indicator."""
    if cluster["benchmark_level"] == "eu":
        return "eu", "none", [(EU27, "indicator")]
    if indicator["geo_scope"] == "regions":
        regions = [
            (r["nuts_code"], r["weight_basis"])
            for r in inputs.seeds["cluster_regions"]
            if r["cluster_id"] == cluster["cluster_id"]
        ]
        return "regions", indicator["aggregation"], regions
    return "country", "none", [(cluster["country_code"], "indicator")]


def weight_year(weights: dict[tuple, dict], geos: list[str], year: int) -> int | None:
    """The one year all weights come from: `year` when every region has a weight then, else the nearest year in
    which all have one (the later on a tie); None when there is none. `weights`: geo -> {year: weight}."""
    complete = set.intersection(*(set(weights.get(g, {})) for g in geos))
    return min(complete, key=lambda y: (abs(y - year), -y)) if complete else None


def cluster_values(inputs: Inputs, resolved: dict) -> dict[tuple, dict]:
    """(cluster, indicator, year) -> the cluster's Eurostat value with national / EU27 comparators, flags and
    quality_flag. Emitted only when every geo of the cluster reports a value (and a weight), or every geo reports
    a row and one carries a quality flag (then the value is null and flagged)."""
    by_indicator_year = defaultdict(dict)  # (indicator, year) -> {geo: row}
    series = defaultdict(dict)  # (indicator, geo) -> {year: value}, values only
    for (code, geo, year), row in resolved.items():
        by_indicator_year[(code, year)][geo] = row
        if row["value"] is not None:
            series[(code, geo)][year] = row["value"]
    out = {}
    for cluster in inputs.seeds["clusters"]:
        for indicator in inputs.seeds["indicators"]:
            if indicator["source_type"] != "eurostat":
                continue
            code = indicator["indicator_code"]
            scope, aggregation, geos = cluster_geos(inputs, cluster, indicator)
            years = sorted(
                {y for (c, y), rows in by_indicator_year.items() if c == code and any(g in rows for g, _ in geos)}
            )
            for year in years:
                row = cluster_year_value(
                    series, by_indicator_year[(code, year)], indicator, cluster, scope, aggregation, geos, year
                )
                if row is not None:
                    out[(cluster["cluster_id"], code, year)] = row
    return out


def cluster_year_value(series, rows, indicator, cluster, scope, aggregation, geos, year):
    reported = [rows[g] for g, _ in geos if g in rows]
    if len(reported) < len(geos):
        return None
    flags = sorted({r["quality_flag"] for r in reported if r["quality_flag"]})
    value = None
    if not flags:
        if any(r["value"] is None for r in reported):
            return None
        values = [r["value"] for r in reported]
        if aggregation == "sum":
            value = sum(values)
        elif aggregation == "weighted_mean":
            weights = region_weights(series, indicator, geos, year)
            if weights is None or sum(weights) == 0:
                return None
            value = sum(v * w for v, w in zip(values, weights, strict=True)) / sum(weights)
        else:
            value = values[0]
    national = rows.get(cluster["country_code"]) if cluster["benchmark_level"] == "region" else None
    eu27 = rows.get(EU27)
    quality = [f"value:{f}" for f in flags]
    if scope != "country" and national and national["quality_flag"]:
        quality.append(f"national_value:{national['quality_flag']}")
    if scope != "eu" and eu27 and eu27["quality_flag"]:
        quality.append(f"eu27_value:{eu27['quality_flag']}")
    return {
        "geo_scope": scope,
        "aggregation": aggregation,
        "geo_codes": ",".join(sorted(g for g, _ in geos)),
        "value": value,
        "national_value": national["value"] if national else None,
        "eu27_value": eu27["value"] if eu27 else None,
        **{
            name: any(r[name] for r in reported)
            for name in ("is_provisional", "is_estimated", "is_confidential", "is_break")
        },
        "nuts_versions": ",".join(sorted({r["nuts_version"] for r in reported})),
        "quality_flag": ",".join(quality) or None,
    }


def region_weights(series, indicator, geos, year) -> list[Fraction] | None:
    """Weights of the regions for a weighted mean: 1 for weight_basis 'equal', else the weight indicator's value
    in the one weight year; None when no year has a weight for every region."""
    weighted = [g for g, basis in geos if basis != "equal"]
    weights = {g: series.get((indicator["weight_indicator_code"], g), {}) for g in weighted}
    chosen = weight_year(weights, weighted, year) if weighted else None
    if weighted and chosen is None:
        return None
    return [Fraction(1) if basis == "equal" else weights[g][chosen] for g, basis in geos]
