"""The Pareto chart as a custom Streamlit component (hover pictures, zoom kept across updates).

The frontend is one static file, ``pages/components/pareto_chart/index.html`` (no build step).
At first use it is copied, with the ``plotly.min.js`` that ships inside the plotly Python
package, into a served runtime directory (``$OPTIPOLY_CACHE`` or ``var/cache`` under the
repository, ``components/pareto_chart/``); structure pictures for the hover box are written
there too, as ``img/<image_key>.svg`` (``core.chem.structure_images``). Observations, the proposed
batch and the reference polymers are drawn before the chart is sent; a pool's 10,000 pictures
are drawn by a background process (``python -m core.chem.structure_images``), niced, once.

:func:`add_clicked_to_batch` is the details panel's "Add to batch" for a clicked pool candidate
(:func:`pages._proposal.add_by_hand` -> ``core.campaign.cycle.add_to_pending_batch``).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Generic, TypeVar

import plotly
import plotly.graph_objects as go
import streamlit as st
import streamlit.components.v1 as components

from core.atomic_io import atomic_copy, atomic_write_text
from core.config import BatchState
from core.store import Store
from core.ui.figure_export import ExportSpec, export_specs, export_unavailable, figure_image
from core.ui.figures import pareto_file_stem
from core.chem.structure_images import IMAGE_FORMAT, write_structure_images
from pages._common import ACTOR, esc
from pages._proposal import add_by_hand

REPO = Path(__file__).resolve().parents[1]
_SOURCE = Path(__file__).resolve().parent / "components" / "pareto_chart"
_component_func = None
_pool_started: set[str] = set()  # picture lists handed to a background process (this server)


def cache_root() -> Path:
    """``$OPTIPOLY_CACHE`` or ``<repository>/var/cache``."""
    return Path(os.environ.get("OPTIPOLY_CACHE", str(REPO / "var" / "cache"))).expanduser()


def component_dir() -> Path:
    """The served directory of the component (prepared once per cache root and process)."""
    return _prepared(cache_root())


#: Streamlit's app static folder (``server.enableStaticServing``, served at ``app/static/``):
#: ``static/`` beside the entry script ``app.py``
STATIC_DIR = REPO / "static"
#: the placeholder in index.html that becomes the address of the static Plotly bundle
_PLOTLY_PLACEHOLDER = "__PLOTLY_STATIC_SRC__"


def _copy_if_changed(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` (atomically) unless an equal-sized copy no older than it is
    there; the copy keeps ``src``'s modification time (HTTP Last-Modified of a static file)."""
    if dst.is_file() and dst.stat().st_size == src.stat().st_size and \
            dst.stat().st_mtime >= src.stat().st_mtime:
        return
    atomic_copy(src, dst)
    st_ = src.stat()
    os.utime(dst, (st_.st_atime, st_.st_mtime))


def static_plotly(plotly_js: Path, static_dir: Path = STATIC_DIR) -> str | None:
    """Publish ``plotly_js`` in the app's static folder as ``plotly-<sha1[:12]>.min.js``; its
    address relative to the component's page (``<base>/component/<name>/index.html`` ->
    ``<base>/app/static/<file>``), or None when the folder cannot be written (the page then
    loads the copy beside it).

    Why: Streamlit's component route answers with ``Cache-Control: public`` and no validator
    or max-age, so Chromium fetched (1.5 MB gzip) and compiled the 4.8 MB bundle on every page
    load (~1.2 s of the Overview's first paint, docs/paint_speed.md). The static route sends
    ``Last-Modified`` and an ETag, and the content-hashed name changes with the bundle.
    """
    digest = hashlib.sha1(plotly_js.read_bytes()).hexdigest()[:12]
    name = f"plotly-{digest}.min.js"
    try:
        static_dir.mkdir(parents=True, exist_ok=True)
        _copy_if_changed(plotly_js, static_dir / name)
    except OSError:
        return None
    return f"../../app/static/{name}"


#: plotly.js with only the trace types the chart draws (scatter, scattergl, bar): 1.5 MB
#: against the full bundle's 4.8 MB, evaluated on every page load (scripts/build_plotly_bundle.sh)
PARTIAL_PLOTLY = REPO / "assets" / "vendor" / "plotly-partial.min.js"
FULL_PLOTLY = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def plotly_js_version(path: Path) -> str | None:
    """The plotly.js version in a bundle's header comment (``* plotly.js v4.1.1 ...``)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = fh.read(400)
    except OSError:
        return None
    m = re.search(r"plotly\.js v([0-9][^\s*]*)", head)
    return m.group(1) if m else None


def plotly_bundle(partial: Path = PARTIAL_PLOTLY, full: Path = FULL_PLOTLY) -> Path:
    """The Plotly bundle the chart loads: the partial one when it is the same plotly.js version
    as the Python package's (whose figure JSON it must draw), else the package's full bundle."""
    v = plotly_js_version(partial)
    return partial if v is not None and v == plotly_js_version(full) else full


@lru_cache(maxsize=8)
def _prepared(root: Path) -> Path:
    """Create ``root/components/pareto_chart`` and refresh its index.html (with the address
    of the static Plotly bundle filled in, :func:`static_plotly`) and plotly.min.js (the
    bundle of :func:`plotly_bundle`, the page's fallback)."""
    d = root / "components" / "pareto_chart"
    (d / "img").mkdir(parents=True, exist_ok=True)
    plotly_js = plotly_bundle()
    _copy_if_changed(plotly_js, d / "plotly.min.js")
    html = (_SOURCE / "index.html").read_text(encoding="utf-8").replace(
        _PLOTLY_PLACEHOLDER, static_plotly(plotly_js) or "plotly.min.js")
    index = d / "index.html"
    if not index.is_file() or index.read_text(encoding="utf-8") != html:
        atomic_write_text(index, html)
    return d


def _component():
    global _component_func
    if _component_func is None:
        _component_func = components.declare_component("pareto_chart", path=str(component_dir()))
    return _component_func


def ensure_images(psmiles: Iterable[str]) -> int:
    """Draw the hover pictures of these polymers now (skips those already drawn)."""
    return write_structure_images(psmiles, component_dir() / "img")


def ensure_images_background(psmiles: list[str]) -> None:
    """Draw many pictures (a pool) in a niced child process, once per distinct list and
    picture format (minified SVGs, ~3.4 kB each: ~34 MB for a 10,000-polymer pool)."""
    key = hashlib.sha1("\n".join([IMAGE_FORMAT, *psmiles]).encode()).hexdigest()[:16]
    if key in _pool_started:
        return
    _pool_started.add(key)
    d = component_dir()
    marker = d / f".pool-{key}.done"
    if marker.is_file():
        return
    lst = Path(tempfile.gettempdir()) / f"optipoly-pool-{key}.smi"
    lst.write_text("\n".join(psmiles), encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    subprocess.Popen(
        ["nice", "-n", "10", sys.executable, "-m", "core.chem.structure_images",
         "--out", str(d / "img"), "--done", str(marker), str(lst)],
        cwd=str(REPO), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL, start_new_session=True)


_V = TypeVar("_V")


class SharedCache(Generic[_V]):
    """A small least-recently-used map shared by every session of this server process
    (thread-safe): what one session built from the campaign's data is reused by the next
    session that shows the same data (a new browser tab, a returning user), instead of each
    session building it again. Values are shared, not copied: callers must not change them."""

    def __init__(self, max_entries: int = 16) -> None:
        self._max = int(max_entries)
        self._items: OrderedDict[Hashable, _V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> _V | None:
        """The value stored under ``key`` (now the most recent) or None."""
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: Hashable, value: _V) -> None:
        """Store ``value`` under ``key``; the least recently used entry goes beyond
        ``max_entries``."""
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def get_or_build(self, key: Hashable, build: Callable[[], tuple[_V, bool]]) -> _V:
        """The stored value, or ``build()``'s, kept for the next session when ``build`` says
        it may be shared (its second element; False e.g. for data caught half-written)."""
        hit = self.get(key)
        if hit is not None:
            return hit
        value, shareable = build()
        if shareable:
            self.put(key, value)
        return value

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


@dataclass(frozen=True)
class ChartPayloads:
    """What the Overview sends for one state of a campaign's data: the Pareto figure as the
    browser draws it (themed), the history figure, the figure for the export buttons (white
    paper) and the pool's id -> SMILES map of the details panel (None without a pool cloud)."""

    figure: dict
    history: dict
    export: dict
    pool_psmiles: dict[str, str] | None


#: Overview chart payloads by (database, campaign, cache root, data signature, data digest)
CHART_PAYLOADS: SharedCache[ChartPayloads] = SharedCache(16)
#: the Overview's model-check table (a DataFrame) by the same keys
MODEL_CHECKS: SharedCache = SharedCache(16)


def figure_payload(fig: go.Figure) -> dict:
    """Plotly JSON of a figure (numpy arrays as typed-array specs, decoded by plotly.js)."""
    return json.loads(fig.to_json())


def pareto_chart(payload: dict, *, sig: str, key: str, height: int = 600,
                 image_keys: bool = True, keep_zoom: bool = True,
                 config: dict | None = None, history: dict | None = None,
                 history_height: int = 300) -> dict | None:
    """Render the chart; returns the last clicked point as {curve, customdata, x, y, t} or None.

    ``sig`` identifies the data: the browser redraws (Plotly.react) only when it changes, and
    with ``keep_zoom`` the user's zoom/pan survives the redraw (until a double click).
    ``history`` (a figure payload) is drawn below the chart in the same frame, so the page
    loads and parses one Plotly bundle instead of two.
    """
    return _component()(figure=payload, sig=str(sig), height=int(height),
                        image_keys=bool(image_keys), keep_zoom=bool(keep_zoom),
                        config=config or {}, history=history,
                        history_height=int(history_height), key=key, default=None)


def _render_export(payload: dict, spec: ExportSpec) -> bytes:
    """The file of one export button (run by Streamlit when the button is clicked)."""
    return figure_image(payload, spec.fmt, scale=spec.scale)


def export_buttons(payload: dict, campaign: str) -> None:
    """Download buttons for the plot as SVG, PDF and print PNG, named
    ``<campaign>-pareto.<ext>`` and rendered on the server only when clicked
    (:mod:`core.ui.figure_export`); one line saying why instead where that cannot run."""
    why = export_unavailable()
    if why:
        st.caption(f"SVG / PDF export is not available on this server: {esc(why)}. The camera "
                   f"button in the chart's mode bar saves a PNG "
                   f"({esc(pareto_file_stem(campaign))}.png).")
        return
    specs = export_specs(campaign)
    cols = st.columns([1] * len(specs) + [3], vertical_alignment="center")
    for col, spec in zip(cols, specs):
        col.download_button(
            spec.label, data=lambda spec=spec: _render_export(payload, spec),
            file_name=spec.file_name, mime=spec.mime, key=f"pareto_export_{spec.fmt}",
            icon=":material/download:",
            help=f"Saves {spec.file_name}: the whole plot as drawn from the data (not your "
                 "zoom), rendered on the server in a few seconds")
    cols[-1].caption("Export the Pareto plot; the camera button in the chart saves the "
                     "view you see as PNG.")


#: session key of the last plot-click addition: (campaign, pool id, ok, message)
PLOT_ADD_RESULT = "_plot_add_result"


def add_clicked_to_batch(store: Store, campaign: str, pool_id: str, psmiles: str) -> None:
    """"Add to batch" for the pool candidate clicked on the Pareto plot (only pool points: an
    observed point has its value already).  The candidate joins the campaign's batch waiting
    for approval with its predictions and EHVI (:func:`pages._proposal.add_by_hand`, i.e.
    ``core.campaign.cycle.add_to_pending_batch``); the line it returns — what was added, or
    why nothing was (no batch waits, already in the batch, observed …) — stays shown under
    the button while this point is the clicked one."""
    pending = store.current_batch(campaign)
    waiting = pending is not None and pending["status"] == BatchState.PROPOSED
    if st.button("Add to batch", key="plot_add_to_batch", icon=":material/playlist_add:",
                 help="add this pool candidate to the batch waiting for approval, with its "
                      "predicted n_D, ν_D and EHVI (it goes on top of the Batch table)"):
        with st.spinner("Predicting n_D, ν_D and the EHVI of the candidate …"):
            ok, msg = add_by_hand(store, None, [psmiles], campaign=campaign,
                                  pool_ids=[pool_id], actor=ACTOR)
        st.session_state[PLOT_ADD_RESULT] = (campaign, pool_id, ok, msg)
        if ok:  # redraw the plot with the new batch member
            st.rerun()
    last = st.session_state.get(PLOT_ADD_RESULT)
    if last is not None and last[:2] == (campaign, pool_id):
        (st.success if last[2] else st.error)(esc(last[3]))
    elif waiting:
        st.caption(f"Adds it to batch {pending['id']} (cycle {pending['cycle']}), waiting for "
                   "approval.")
    else:
        st.caption("No batch is waiting for approval" + (
            f" (batch {pending['id']} of cycle {pending['cycle']} is {pending['status']})"
            if pending is not None else "") + ": propose one on the Batch page to add to it.")
