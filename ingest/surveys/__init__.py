"""Cluster surveys: data contract, codebooks for real export layouts, pseudonymised parsing, quarantine.

Entry points: :func:`ingest.surveys.parse.parse_file`, :mod:`ingest.surveys.inbox`,
:func:`ingest.surveys.commands.register`.
"""
