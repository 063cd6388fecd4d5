"""Files the pages need besides themselves: the dashboard's own CSS / JS (package data, inlined into every page)
and the Vega + Vega-Lite + vega-embed bundle, written once to ``<out_dir>/assets/vega-bundle.js``."""

from __future__ import annotations

import functools
import os
import re
from importlib.resources import files
from pathlib import Path

ASSET_DIR = "assets"
BUNDLE_NAME = "vega-bundle.js"
BUNDLE_SRC = f"{ASSET_DIR}/{BUNDLE_NAME}"  # as the pages reference it


@functools.cache
def static_text(name: str) -> str:
    """A file of ``ingest/dashboard/static`` (read from the installed package, not from the repository)."""
    return files("ingest.dashboard").joinpath("static", name).read_text(encoding="utf-8")


@functools.cache
def _bundle() -> tuple[str, str]:
    """(version stamp, JS) of Vega + Vega-Lite + vega-embed from the vl-convert-python wheel (no network)."""
    import vl_convert

    try:
        import altair

        minor = ".".join(altair.VEGALITE_VERSION.lstrip("v").split(".")[:2])
        vl_version = minor if minor in vl_convert.get_vegalite_versions() else None
    except Exception:  # noqa: BLE001 - altair absent or unexpected version: newest bundled Vega-Lite
        vl_version = None
    js = vl_convert.javascript_bundle(vl_version=vl_version) if vl_version else vl_convert.javascript_bundle()
    stamp = (
        f"vega {vl_convert.get_vega_version()}, vega-lite {vl_version or 'latest'}, "
        f"vega-embed {vl_convert.get_vega_embed_version()}"
    )
    return stamp, js


def write_assets(out_dir: Path) -> Path:
    """Write assets/vega-bundle.js unless an identical version is already there; return its path."""
    target = out_dir / ASSET_DIR / BUNDLE_NAME
    try:
        with target.open(encoding="utf-8") as fh:
            first = fh.readline()
    except OSError:
        first = ""
    # Cheap check before bundling (bundling takes seconds): the same vl-convert and altair (which picks the
    # Vega-Lite version) make the same bundle.
    if first.startswith(f"{_HEADER}{_versions()};"):
        return target
    write_text(target, bundle_text())
    return target


def bundle_text() -> str:
    """The bundle file's text, from the state folder's cache (``cache/vega-bundle-<versions>.js``, primed by
    ``make install``: bundling takes seconds, so a first run does not), else bundled and cached."""
    from ingest.config import state_dir

    name = re.sub(r"[^A-Za-z0-9.-]+", "-", _versions())
    cached = state_dir() / "cache" / f"vega-bundle-{name}.js"
    try:
        with cached.open(encoding="utf-8", newline="") as fh:  # byte for byte what was written
            return fh.read()
    except OSError:
        pass
    stamp, js = _bundle()
    text = f"{_HEADER}{_versions()}; {stamp}. Licences: BSD-3-Clause (Vega projects). */\n" + js
    write_text(cached, text)
    return text


_HEADER = "/* vega-bundle: "


def _versions() -> str:
    """What the bundle depends on: the vl-convert wheel (Vega's JavaScript) and altair (the Vega-Lite version)."""
    import vl_convert

    wheel = getattr(vl_convert, "__version__", None) or _dist_version("vl-convert-python")
    return f"vl-convert-python {wheel}, altair {_dist_version('altair')}"


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def write_text(path: Path, text: str) -> None:
    """Write atomically (temporary file + rename), creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
