"""SDMX data from any statistics provider (OECD, ECB, INSEE, ISTAT, Eurostat's SDMX endpoint, any SDMX 2.1 REST
service) decoded into the same long table as Eurostat's bodies (:mod:`ingest.eurostat.frames`).

* :mod:`ingest.sdmx.decode`: what a body is (SDMX-CSV 1.0/2.0, SDMX-ML 2.1 generic or structure-specific,
  SDMX-ML 2.0 compact, SDMX-JSON 1.0/2.0) and the one entry point, :func:`~ingest.sdmx.decode.decode_sdmx`.
* :mod:`ingest.sdmx.structure`: the dimensions of a data structure definition (DSD), which structure-specific
  messages need to tell a dimension from an attribute.
* :mod:`ingest.sdmx.table`: observations collected while reading, turned into the long table.
* :mod:`ingest.sdmx.read_csv`, :mod:`ingest.sdmx.read_xml`, :mod:`ingest.sdmx.read_json`: one reader per syntax.
* :mod:`ingest.sdmx.commands`: ``ss4gl sdmx decode``.
"""
