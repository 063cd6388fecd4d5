"""A second implementation of the published marts, written from their documentation (model headers and YAML,
dbt_project/README.md, the seeds' formula texts), in plain Python, from ``raw.*``, ``audit.batches`` and the seed
CSV files: never through a dbt model (tests/pipeline/recompute/checks.py compares it with what dbt published).

* ``exact``    -- exact arithmetic (``Fraction``; ``Decimal`` at 60 digits for square roots and powers) and the
                  rules for comparing a published value with its exact value;
* ``inputs``   -- the raw tables (latest survey file per cluster x wave), the seeds and the project vars;
* ``surveys``  -- state-of-affairs KPIs, SME survey outcomes, survey indicators;
* ``eurostat`` -- indicator values per geo (dims filter, shares, NUTS version) and per cluster (aggregation);
* ``marts``    -- one function per mart, returning ``{key: {column: value}}``, with the columns it compares;
* ``compare``  -- published rows against recomputed ones, one readable line per difference.
"""
