"""Server-side export of a Plotly figure as SVG, PDF or print-resolution PNG (no Streamlit).

Rendering uses kaleido (>= 1.0), which drives a local Chrome/Chromium through the DevTools
protocol: kaleido finds the system browser (``/usr/bin/chromium`` here; ``BROWSER_PATH``
overrides) and the plotly.js that ships inside the plotly package, so an export works offline.
Nothing is downloaded: :func:`export_unavailable` never calls ``kaleido.get_chrome_sync`` and
MathJax (loaded from a CDN by default) is switched off — the figures use no LaTeX.  WebGL
traces (the pool cloud) are drawn as SVG scatter traces, so SVG and PDF stay vector graphics.
"""
from __future__ import annotations

import copy
import os
import shutil
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

from core.errors import OptipolyError
from core.ui.figures import pareto_file_stem

__all__ = ["ExportSpec", "ExportUnavailable", "EXPORT_SIZE", "export_specs",
           "export_unavailable", "figure_image", "print_figure"]

#: width, height in CSS pixels of an exported plot (a PNG at scale 3 is 2700 x 1800)
EXPORT_SIZE: tuple[int, int] = (900, 600)


class ExportUnavailable(OptipolyError, RuntimeError):
    """Server-side export cannot run here (kaleido or a Chrome/Chromium is missing)."""


@dataclass(frozen=True)
class ExportSpec:
    """One export format: ``fmt`` for kaleido, button ``label``, ``file_name``, ``mime``,
    ``scale`` (device pixels per CSS pixel: 3 for a print-resolution PNG)."""

    fmt: str
    label: str
    file_name: str
    mime: str
    scale: float = 1.0


def export_specs(campaign: str) -> list[ExportSpec]:
    """SVG, PDF and a print PNG (scale 3) of a campaign's Pareto plot, each file named
    ``<campaign>-pareto.<ext>`` (:func:`core.ui.figures.pareto_file_stem`)."""
    stem = pareto_file_stem(campaign)
    return [ExportSpec("svg", "SVG", f"{stem}.svg", "image/svg+xml"),
            ExportSpec("pdf", "PDF", f"{stem}.pdf", "application/pdf"),
            ExportSpec("png", "PNG (print, 3×)", f"{stem}.png", "image/png", 3.0)]


def _browser_path() -> str | None:
    """The Chrome/Chromium kaleido would use (``BROWSER_PATH``, then ``PATH`` and the usual
    install locations; a browser kaleido downloaded earlier counts too), or None."""
    try:
        from choreographer.browsers.chromium import Chromium  # noqa: PLC0415

        path = Chromium.find_browser(skip_local=False)
    except (ImportError, AttributeError, TypeError, OSError, RuntimeError):  # another
        # choreographer version (or none): plain PATH search
        path = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "chrome",
                                                    "google-chrome")) if p), None)
    # BROWSER_PATH is returned unchecked by choreographer
    return path if path and os.path.isfile(path) and os.access(path, os.X_OK) else None


def export_unavailable() -> str | None:
    """None when server-side export can run here, else the reason in one sentence."""
    try:
        import kaleido  # noqa: F401, PLC0415
    except ImportError:
        return "kaleido is not installed (pip install kaleido)"
    if _browser_path() is None:
        return ("kaleido needs a Chrome or Chromium and none was found (install chromium or "
                "set BROWSER_PATH)")
    return None


def print_figure(figure: go.Figure | dict[str, Any]) -> dict[str, Any]:
    """Plotly JSON of ``figure`` ready for a file: WebGL traces as SVG scatter traces and a
    white background; the caller's figure is not changed."""
    fig = copy.deepcopy(figure.to_plotly_json() if isinstance(figure, go.Figure) else figure)
    for tr in fig.get("data", []):
        if tr.get("type") == "scattergl":
            tr["type"] = "scatter"
    layout = fig.setdefault("layout", {})
    layout.update(paper_bgcolor="white", plot_bgcolor="white")
    layout.pop("height", None)  # the export size wins
    layout.pop("width", None)
    return fig


def figure_image(figure: go.Figure | dict[str, Any], fmt: str, *, scale: float = 1.0,
                 size: tuple[int, int] = EXPORT_SIZE, timeout_s: float = 90.0) -> bytes:
    """``figure`` (a Figure or its Plotly JSON) as ``svg``, ``pdf`` or ``png`` bytes.

    Raises :class:`ExportUnavailable` when kaleido or a browser is missing, ValueError for
    another format.  Takes a few seconds (kaleido starts a headless browser per call).
    """
    if fmt not in ("svg", "pdf", "png"):
        raise ValueError(f"unsupported export format {fmt!r} (svg, pdf or png)")
    why = export_unavailable()
    if why:
        raise ExportUnavailable(why)
    import kaleido  # noqa: PLC0415

    before = _browser_children()
    try:
        out = kaleido.calc_fig_sync(
            print_figure(figure),
            opts={"format": fmt, "width": int(size[0]), "height": int(size[1]),
                  "scale": float(scale)},
            kopts={"mathjax": False, "timeout": timeout_s})
    except BaseException:
        # a timed-out or failed export can leave its headless browser running: stop the ones
        # this call started (never a browser that was there before)
        _kill(_browser_children() - before)
        raise
    return bytes(out)


def _browser_children() -> set[int]:
    """PIDs of Chrome/Chromium processes below this process."""
    import psutil  # noqa: PLC0415

    out = set()
    for p in psutil.Process().children(recursive=True):
        try:
            if "chrom" in p.name().lower():
                out.add(p.pid)
        except psutil.Error:
            continue
    return out


def _kill(pids: set[int]) -> None:
    """Terminate, then kill, the given processes (those already gone are skipped)."""
    import psutil  # noqa: PLC0415

    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.Error:
            continue
    for p in procs:
        try:
            p.terminate()
        except psutil.Error:
            continue
    _, alive = psutil.wait_procs(procs, timeout=3)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            continue
