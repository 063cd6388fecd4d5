-- 0002_surveys: canonical raw tables of the cluster surveys (contract version 1).
-- Idempotent. Schemas raw and audit come from 0001.
-- Loader contract: per file, `delete from raw.<table> where file_sha256 = %s` then COPY the parser's DataFrame
-- (column names = table columns; the loader adds batch_id). No personal data: respondents are keyed HMAC
-- pseudonyms (respondent_pid), contact columns never reach these tables, free text is scrubbed.

create table if not exists raw.survey_sme_respondents (
    batch_id          text not null,
    file_sha256       text not null,
    cluster           text not null,
    wave              int  not null,
    respondent_pid    text not null,
    source_row        int  not null,
    nuts3             text not null,
    nace              text not null,
    size_class        text not null check (size_class in ('micro', 'small', 'medium', 'large')),
    turnover_band     text,
    export_share      numeric check (export_share between 0 and 100),
    does_rd           boolean,
    founding_year     int,
    digital_maturity  smallint check (digital_maturity between 1 and 5),
    low_carbon_offer  boolean,
    low_carbon_which  text,
    offers_text       text,
    needs_text        text,
    comments          text,
    formula_like      boolean not null default false,
    primary key (file_sha256, respondent_pid)
);

create table if not exists raw.survey_sme_service_ratings (
    batch_id        text not null,
    file_sha256     text not null,
    cluster         text not null,
    wave            int  not null,
    respondent_pid  text not null,
    service         text not null,
    used_12m        boolean,
    importance      smallint check (importance between 1 and 5),
    satisfaction    smallint check (satisfaction between 1 and 5),
    impact          smallint check (impact between 1 and 5),
    priority_top3   boolean,
    primary key (file_sha256, respondent_pid, service)
);

create table if not exists raw.survey_sme_interests (
    batch_id        text not null,
    file_sha256     text not null,
    cluster         text not null,
    wave            int  not null,
    respondent_pid  text not null,
    sector          text not null,
    primary key (file_sha256, respondent_pid, sector)
);

create table if not exists raw.survey_sme_offers_needs (
    batch_id        text not null,
    file_sha256     text not null,
    cluster         text not null,
    wave            int  not null,
    respondent_pid  text not null,
    direction       text not null check (direction in ('offer', 'need')),
    code            text not null,
    primary key (file_sha256, respondent_pid, direction, code)
);

create table if not exists raw.survey_soa_profile (
    batch_id                 text not null,
    file_sha256              text not null,
    cluster                  text not null,
    wave                     int  not null,
    members_sme              int  not null,
    members_large_company    int  not null,
    members_research         int  not null,
    members_public           int  not null,
    members_other            int  not null,
    member_employees         int,
    member_turnover_eur      numeric,
    innovation_turnover_eur  numeric,
    staff_fte                numeric,
    labels                   text,
    note                     text,
    formula_like             boolean not null default false,
    primary key (file_sha256)
);

create table if not exists raw.survey_soa_kpis (
    batch_id                     text not null,
    file_sha256                  text not null,
    cluster                      text not null,
    wave                         int  not null,
    events                       int  not null,
    b2b_meetings                 int  not null,
    matchmaking_contacts         int,
    joint_projects_submitted     int  not null,
    joint_projects_won           int  not null,
    services_offered             int,
    cross_sector_collaborations  int,
    members_joined               int,
    members_left                 int,
    primary key (file_sha256)
);

create table if not exists raw.survey_soa_goals (
    batch_id        text not null,
    file_sha256     text not null,
    cluster         text not null,
    wave            int  not null,
    source_row      int  not null,
    goal            text not null,
    theme           text,
    target_value    numeric,
    unit            text,
    target_year     int  not null,
    baseline_value  numeric,
    baseline_year   int,
    formula_like    boolean not null default false,
    primary key (file_sha256, source_row)
);

create table if not exists raw.survey_soa_figures (
    batch_id      text not null,
    file_sha256   text not null,
    cluster       text not null,
    wave          int  not null,
    source_row    int  not null,
    indicator     text not null,
    value         numeric not null,
    unit          text,
    year          int  not null,
    source        text,
    formula_like  boolean not null default false,
    primary key (file_sha256, source_row)
);

create table if not exists raw.survey_soa_swot (
    batch_id      text not null,
    file_sha256   text not null,
    cluster       text not null,
    wave          int  not null,
    source_row    int  not null,
    kind          text not null check (kind in ('strength', 'weakness', 'opportunity', 'threat')),
    theme         text,
    text          text not null,
    formula_like  boolean not null default false,
    primary key (file_sha256, source_row)
);

create table if not exists raw.survey_soa_practices (
    batch_id      text not null,
    file_sha256   text not null,
    cluster       text not null,
    wave          int  not null,
    source_row    int  not null,
    title         text not null,
    description   text,
    service       text,
    formula_like  boolean not null default false,
    primary key (file_sha256, source_row)
);

create index if not exists survey_sme_respondents_cluster_wave on raw.survey_sme_respondents (cluster, wave);
create index if not exists survey_sme_service_ratings_cluster_wave on raw.survey_sme_service_ratings (cluster, wave);
create index if not exists survey_soa_profile_cluster_wave on raw.survey_soa_profile (cluster, wave);
