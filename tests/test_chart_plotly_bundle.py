"""The chart component's Plotly bundle: the partial bundle only for the same plotly.js version
as the Python package, published under a content-hashed name in the app's static folder."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("streamlit")

from pages._pareto_chart import (  # noqa: E402
    FULL_PLOTLY, PARTIAL_PLOTLY, plotly_bundle, plotly_js_version, static_plotly,
)


def _bundle(path: Path, version: str, body: str = "var Plotly={};") -> Path:
    path.write_text(f"/**\n* plotly.js v{version} partial bundle\n*/\n{body}\n")
    return path


def test_shipped_partial_bundle_matches_the_installed_plotly() -> None:
    assert plotly_js_version(FULL_PLOTLY) is not None
    assert plotly_js_version(PARTIAL_PLOTLY) == plotly_js_version(FULL_PLOTLY), (
        "assets/vendor/plotly-partial.min.js is for another plotly.js than the installed "
        "plotly package; rebuild it with scripts/build_plotly_bundle.sh")
    assert plotly_bundle() == PARTIAL_PLOTLY
    # much smaller than the full bundle, and it registers the dashboard's trace types
    assert PARTIAL_PLOTLY.stat().st_size < FULL_PLOTLY.stat().st_size / 2
    text = PARTIAL_PLOTLY.read_text(encoding="utf-8", errors="replace")
    for trace in ('"scattergl"', '"bar"', '"scatter"'):
        assert trace in text, trace


def test_bundle_choice_falls_back_to_the_full_bundle_on_a_version_mismatch(tmp_path) -> None:
    full = _bundle(tmp_path / "full.js", "4.1.1")
    assert plotly_bundle(_bundle(tmp_path / "p1.js", "4.1.1"), full) == tmp_path / "p1.js"
    assert plotly_bundle(_bundle(tmp_path / "p2.js", "4.2.0"), full) == full
    assert plotly_bundle(tmp_path / "missing.js", full) == full
    (tmp_path / "nohead.js").write_text("var Plotly={};")
    assert plotly_js_version(tmp_path / "nohead.js") is None
    assert plotly_bundle(tmp_path / "nohead.js", full) == full


def test_static_plotly_is_content_hashed_and_idempotent(tmp_path) -> None:
    a = _bundle(tmp_path / "a.js", "4.1.1", "var A=1;")
    b = _bundle(tmp_path / "b.js", "4.1.1", "var B=2;")
    static = tmp_path / "static"
    url_a = static_plotly(a, static)
    assert url_a.startswith("../../app/static/plotly-") and url_a.endswith(".min.js")
    served = static / url_a.rsplit("/", 1)[1]
    assert served.read_bytes() == a.read_bytes()
    assert served.stat().st_mtime == a.stat().st_mtime  # Last-Modified of the source
    assert static_plotly(a, static) == url_a  # same content, same name, no second file
    url_b = static_plotly(b, static)
    assert url_b != url_a and len(list(static.iterdir())) == 2


def test_static_plotly_unwritable_folder_gives_none(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert static_plotly(_bundle(tmp_path / "a.js", "4.1.1"), blocker / "static") is None
