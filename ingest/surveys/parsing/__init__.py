"""The stages of :func:`ingest.surveys.parse.parse_file`, one module each; imports flow one way, down this list.

- :mod:`.raw`: raw sections and records as read from a file, the input limits, the file-level rejection;
- readers, one per format: :mod:`.read_csv` (wide CSV such as LimeSurvey: decoding, delimiter, records),
  :mod:`.read_long` (long ``section,item,field,value`` CSV), :mod:`.read_xlsx` (workbooks),
  :mod:`.read_json` (Kobo JSON); :mod:`.readers` picks the reader a codebook's layout needs;
- :mod:`.state`: :class:`~.state.ParseState`, the state of one parse with one codebook;
- :mod:`.values`: one cell -> a canonical value;
- :mod:`.records`: raw sections -> contract records (pseudonymised), the file's wave and cluster checks;
- :mod:`.tables`: records -> the contract's canonical raw tables.

The file-level driver, which imports these and nothing imports back, is :mod:`ingest.surveys.parse`.
This ``__init__`` imports nothing: the stage modules import each other by their full module names.
"""
