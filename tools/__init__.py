"""Development tools, run from the repository root; not part of the product (``ingest/`` and ``dags/`` never
import this package, a test checks it).

    python -m tools.eurostat_samples   synthetic Eurostat samples -> ingest/samples/eurostat/
    python -m tools.survey_samples     synthetic survey inbox      -> ingest/samples/inbox/
    python -m tools.survey_suites      survey GX suites            -> expectations/survey_*.json
    python tools/formulas.py           README formula sections from the dbt model YAML

The generated files are committed (the product reads them: offline mode, validation); drift tests regenerate
them in memory and compare (tests/eurostat/test_samples.py, tests/surveys/test_surveys_samples.py,
tests/validation/test_survey_suites.py).
"""
