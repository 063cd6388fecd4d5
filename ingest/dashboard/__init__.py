"""Static HTML strategy dashboard built from the dbt marts (no server, no CDN at view time)."""

from ingest.dashboard.build import build_dashboard

__all__ = ["build_dashboard"]
