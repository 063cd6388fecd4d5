"""SS4GL data platform: all pipeline logic lives here; `dags/` only wires tasks."""

__version__ = "0.1.0"
