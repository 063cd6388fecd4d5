-- 0012: the partnership's configuration as raw tables (issue #21.1). The catalogue (ingest/catalogue.yml, or the file
-- SS4GL_CATALOGUE names) is the one source of truth for the clusters, their regions and the strategy targets; the
-- pipeline replaces these rows from it before every run (ingest.partnership.load_partnership, as the loader role)
-- and dbt builds reference.clusters, reference.cluster_regions and reference.strategy_targets from them. batch_id
-- is the sha256 of the rows, so a configuration change is a change of raw that the next run builds (the dbt build
-- fingerprint reads every raw table's batch ids). Idempotent.
create table if not exists raw.partnership_clusters (
    cluster_id      text primary key,
    cluster_name    text not null,
    country_code    text not null,
    seat_nuts_code  text,
    benchmark_level text not null,
    role            text not null,
    language        text not null,
    batch_id        text not null
);
create table if not exists raw.partnership_cluster_regions (
    cluster_id   text not null,
    nuts_code    text not null,
    nuts_version text not null,
    weight_basis text not null,
    batch_id     text not null,
    primary key (cluster_id, nuts_code)
);
create table if not exists raw.partnership_strategy_targets (
    cluster_id     text    not null,
    indicator_code text    not null,
    baseline_year  integer not null,
    baseline_value numeric not null,
    target_year    integer not null,
    target_value   numeric not null,
    batch_id       text    not null,
    primary key (cluster_id, indicator_code)
);
grant select, insert, delete on raw.partnership_clusters, raw.partnership_cluster_regions,
    raw.partnership_strategy_targets to loader;
grant select on raw.partnership_clusters, raw.partnership_cluster_regions, raw.partnership_strategy_targets
    to transformer;
