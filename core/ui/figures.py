"""Plotly figure builders for the dashboard (no Streamlit imports; pure functions of data).

Axes follow the optics convention of the seed study: **x = Abbe number ν_D** (dimensionless),
**y = refractive index n_D** (at 589.29 nm); both objectives are maximised, so "better" is
up and to the right and "beyond the limit line" means above it.

Every figure sets a constant ``layout.uirevision`` so a live update that swaps the data keeps
the user's zoom/pan, and trace names are stable ("limit line", "Pareto front", ...) so the
browser tests can find them.

Data contracts (pandas DataFrames; extra columns are ignored):

- observations: ``id, n_D, abbe_number, cycle`` and optionally ``name, psmiles, on_front,
  beyond`` (booleans) and ``source, provenance, result`` (as the store gives them: each point's
  origin, :func:`observation_origin`, then names its legend entry and hover label).
- references: ``name, abbreviation, n_D, abbe_number``.
- batch: ``id, mu_n, sd_n, mu_abbe, sd_abbe`` and optionally ``name, psmiles, ehvi``.
- pool: ``id, n_pred, abbe_pred`` and optionally ``psmiles``.
- history: ``cycle, hypervolume, n_beyond`` and optionally ``n_evaluated``.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = ["pareto_figure", "history_figure", "limit_line_xy", "CYCLE_COLORS", "UIREVISION",
           "X_TITLE", "Y_TITLE", "TRACE_LIMIT", "TRACE_FRONT", "TRACE_BATCH", "TRACE_POOL",
           "TRACE_REFERENCES", "TRACE_MEASURED", "TRACE_OTHER_FIDELITY",
           "observation_trace_name", "PointOrigin",
           "observation_origin", "chart_config", "MODEBAR_REMOVE", "UNSELECTED_OPACITY",
           "label_mask", "short_label", "pareto_file_stem", "apply_theme", "DARK_INK",
           "hypervolume_compare_figure"]

UIREVISION = "optipoly-pareto"
X_TITLE = "Abbe number ν<sub>D</sub>"
Y_TITLE = "refractive index n<sub>D</sub>"
TRACE_LIMIT = "limit line"
TRACE_BEYOND = "beyond the line"
TRACE_FRONT = "Pareto front"
TRACE_BATCH = "proposed batch (mean ± σ)"
TRACE_POOL = "pool (predicted)"
TRACE_REFERENCES = "reference polymers (experimental)"
TRACE_MEASURED = "measured (experimental)"
#: simulations of another fidelity than the campaign's (core.campaign.fidelity): greyed, off the
#: front
TRACE_OTHER_FIDELITY = "other fidelity"

#: opacity of the points a click did not select (Plotly's default, 0.2, hid the context)
UNSELECTED_OPACITY = 0.7
#: mode-bar buttons that do nothing useful here: box/lasso select (the page has no selection
#: handling; a selection only faded the other points) and the Chart-Studio "share"/"edit"
#: buttons (they send the data to a web service)
MODEBAR_REMOVE: tuple[str, ...] = (
    "sendDataToCloud", "editInChartStudio", "select2d", "lasso2d", "toggleSpikelines",
    "hoverClosestCartesian", "hoverCompareCartesian",
)
#: a label is hidden when its box (fractions of the axis spans) overlaps one already shown
LABEL_BOX: tuple[float, float] = (0.10, 0.045)

#: qualitative palette for cycles (colour-blind friendly: Okabe–Ito + Tol muted)
CYCLE_COLORS: tuple[str, ...] = (
    "#7f7f7f", "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00",
    "#332288", "#117733", "#AA4499", "#882255", "#44AA99", "#999933",
)


class _LineLike(Protocol):
    p1: tuple[float, float]
    p2: tuple[float, float]


def observation_trace_name(cycle: int) -> str:
    """Legend name of the observations of one cycle (cycle 0 = initial data)."""
    return "initial data" if int(cycle) == 0 else f"cycle {int(cycle)}"


@dataclass(frozen=True)
class PointOrigin:
    """Where an observation's numbers come from.

    ``kind``: ``"experimental"`` (a measured or literature value), ``"simulated"`` (our MD + QM
    pipeline; ``preset`` names its preset when recorded) or ``"unknown"`` (nothing recorded).
    ``citation``: the source text of an experimental value, when recorded.  The plotted values
    are always the raw ones; calibrated values of simulations are shown only in a point's
    details.
    """

    kind: str
    preset: str | None = None
    citation: str | None = None

    @property
    def label(self) -> str:
        """Legend wording: 'experimental', 'simulated · quick', 'simulated',
        'origin not recorded'."""
        if self.kind == "simulated":
            return f"simulated · {self.preset}" if self.preset else "simulated"
        return "experimental" if self.kind == "experimental" else "origin not recorded"

    @property
    def short(self) -> str:
        """Hover wording after a name: 'experimental', 'simulated, quick', 'simulated'
        ('' when unknown)."""
        if self.kind == "unknown":
            return ""
        return self.label.replace(" · ", ", ")

    @property
    def detail(self) -> str:
        """One line for a point's details: what the values are, and that calibrated values
        (simulations only) are shown there, never plotted."""
        if self.kind == "experimental":
            return "experimental (measured / literature value)" + (
                f" · source: {self.citation}" if self.citation else "")
        if self.kind == "simulated":
            return (f"simulated{f' with the {self.preset} preset' if self.preset else ''}: "
                    "raw values, as plotted and used by the optimiser (calibrated values, "
                    "where available, only here)")
        return "origin not recorded"


_EXPERIMENTAL_WORDS = ("experiment", "measured", "literature")


def observation_origin(source: Any, provenance: Any = None, result: Any = None) -> PointOrigin:
    """Origin of one observation from its store ``source`` and its ``provenance`` / ``result``
    records (dicts, or None/NaN when absent).

    Experimental when ``source`` says so (``experimental``, ``reference (experimental)``,
    anything with "experiment", "measured" or "literature") or ``provenance["origin"]`` /
    ``provenance["kind"]`` / ``result["origin"]`` is ``"experimental"``; else simulated when
    ``source`` is ``simulation`` or a preset is recorded (``result["preset"]`` or
    ``provenance["preset"]``), with that preset; else unknown.  Pure function.
    """
    prov = provenance if isinstance(provenance, Mapping) else {}
    res = result if isinstance(result, Mapping) else {}
    src = str(source or "").strip().lower() if isinstance(source, str) else ""
    marks = {str(prov.get("origin") or "").lower(), str(prov.get("kind") or "").lower(),
             str(res.get("origin") or "").lower()}
    if "experimental" in marks or any(w in src for w in _EXPERIMENTAL_WORDS):
        cite = prov.get("source") if isinstance(prov.get("source"), str) else \
            res.get("source") if isinstance(res.get("source"), str) else None
        return PointOrigin("experimental", citation=cite or None)
    preset = res.get("preset") or prov.get("preset")
    preset = str(preset) if isinstance(preset, str) and preset else None
    if src in ("simulation", "simulated") or preset:
        return PointOrigin("simulated", preset=preset)
    return PointOrigin("unknown")


def _origins(obs: pd.DataFrame) -> list[PointOrigin]:
    """:func:`observation_origin` of every row (unknown for frames without ``source``)."""
    if "source" not in obs:
        return [PointOrigin("unknown")] * len(obs)
    prov = obs["provenance"] if "provenance" in obs else [None] * len(obs)
    res = obs["result"] if "result" in obs else [None] * len(obs)
    return [observation_origin(s, p, r) for s, p, r in zip(obs["source"], prov, res)]


def chart_config(file_stem: str = "pareto") -> dict[str, Any]:
    """Plotly config of the dashboard's charts.

    The mouse wheel scrolls the page (``scrollZoom`` off; zoom with a drag box, reset with a
    double click, as in Optuna-dashboard), no Plotly logo and none of :data:`MODEBAR_REMOVE`;
    the camera button saves a print-resolution PNG (scale 3) named ``<file_stem>.png``.
    """
    return {
        "scrollZoom": False, "displaylogo": False, "showSendToCloud": False,
        "showEditInChartStudio": False, "responsive": True,
        "modeBarButtonsToRemove": list(MODEBAR_REMOVE),
        "toImageButtonOptions": {"format": "png", "filename": str(file_stem), "scale": 3},
    }


def pareto_file_stem(campaign: str) -> str:
    """File name (without extension) of an exported Pareto plot: ``<campaign>-pareto``, the
    campaign name reduced to letters, digits, ``.``, ``_`` and ``-`` (others become ``_``;
    ``campaign`` when nothing is left)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", str(campaign)).strip("._-")[:80]
    return f"{safe or 'campaign'}-pareto"


def short_label(text: Any, max_chars: int = 14) -> str:
    """``text`` cut to ``max_chars`` characters (an ellipsis marks the cut) for a point label."""
    s = "" if text is None else str(text).strip()
    return s if len(s) <= max_chars else s[:max_chars - 1].rstrip() + "…"


def label_mask(x: Sequence[float], y: Sequence[float], x_range: tuple[float, float],
               y_range: tuple[float, float], box: tuple[float, float] = LABEL_BOX
               ) -> np.ndarray:
    """Which points get a text label so that no two labels overlap.

    Points are taken in the given order (put the most important first); a point is labelled
    when it lies inside the axis ranges and its label box — ``box`` = (width, height) as
    fractions of the axis spans — overlaps no label already placed. The others are left to
    the hover box. Pure function; returns a boolean array of ``len(x)``.
    """
    xs = np.asarray(x, dtype=float)
    ys = np.asarray(y, dtype=float)
    span_x = float(x_range[1] - x_range[0]) or 1.0
    span_y = float(y_range[1] - y_range[0]) or 1.0
    u = (xs - x_range[0]) / span_x
    v = (ys - y_range[0]) / span_y
    keep = np.zeros(len(xs), dtype=bool)
    placed: list[tuple[float, float]] = []
    for i in range(len(xs)):
        if not (np.isfinite(u[i]) and np.isfinite(v[i]) and 0 <= u[i] <= 1 and 0 <= v[i] <= 1):
            continue
        if all(abs(u[i] - pu) >= box[0] or abs(v[i] - pv) >= box[1] for pu, pv in placed):
            placed.append((u[i], v[i]))
            keep[i] = True
    return keep


def _soften_selection(fig: go.Figure) -> None:
    """A click selects (highlights) one point: it grows and stays opaque while the other
    points keep :data:`UNSELECTED_OPACITY` (labels keep their colour) instead of Plotly's
    default fade to 20 %."""
    for tr in fig.data:
        if tr.type not in ("scatter", "scattergl") or "markers" not in (tr.mode or ""):
            continue
        size = tr.marker.size if isinstance(tr.marker.size, (int, float)) else 9
        tr.update(selected=dict(marker=dict(opacity=1.0, size=float(size) + 5)),
                  unselected=dict(marker=dict(opacity=UNSELECTED_OPACITY)))
        if "text" in tr.mode:
            tr.update(unselected=dict(textfont=dict(color=tr.textfont.color or "#333")))


def _labels(names: Sequence[Any], x: Sequence[float], y: Sequence[float],
            x_range: tuple[float, float], y_range: tuple[float, float],
            taken: list[tuple[float, float]]) -> list[str]:
    """Short labels (:func:`short_label`) of the points whose label fits beside those already
    placed in ``taken`` (data coordinates; extended in place), '' for crowded points (their
    hover box names them)."""
    out = []
    for n, xi, yi in zip(names, x, y):
        px = [p[0] for p in taken] + [float(xi)]
        py = [p[1] for p in taken] + [float(yi)]
        ok = bool(label_mask(px, py, x_range, y_range)[-1])
        if ok:
            taken.append((float(xi), float(yi)))
        out.append(short_label(n) if ok else "")
    return out


def _batch_names(batch: pd.DataFrame) -> list[str]:
    """Label text of proposed candidates: the name when there is one (not the SMILES, which
    the app uses as a fallback name), else ``#k`` in EHVI order (k = 1 for the best)."""
    n = len(batch)
    names = batch["name"] if "name" in batch else pd.Series([None] * n, index=batch.index)
    ps = batch["psmiles"] if "psmiles" in batch else pd.Series([None] * n, index=batch.index)
    if "ehvi" in batch:
        rank = pd.to_numeric(batch["ehvi"], errors="coerce").fillna(-np.inf).rank(
            ascending=False, method="first").astype(int).to_numpy()
    else:
        rank = np.arange(1, n + 1)
    return [str(nm) if isinstance(nm, str) and nm.strip() and nm != p else f"#{k}"
            for nm, p, k in zip(names, ps, rank)]


def limit_line_xy(line: _LineLike | dict[str, Any], x_range: tuple[float, float]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Two-point polyline of the straight limit line through ``p1``/``p2`` (ν_D, n_D) over
    ``x_range``. Accepts an object with ``p1``/``p2`` attributes or a dict with those keys."""
    p1 = line["p1"] if isinstance(line, dict) else line.p1
    p2 = line["p2"] if isinstance(line, dict) else line.p2
    (x1, y1), (x2, y2) = (float(p1[0]), float(p1[1])), (float(p2[0]), float(p2[1]))
    if x1 == x2:
        raise ValueError("limit line points must have different Abbe numbers")
    slope = (y2 - y1) / (x2 - x1)
    xs = np.array([x_range[0], x_range[1]], dtype=float)
    return xs, y1 + slope * (xs - x1)


def _axis_ranges(frames: Sequence[tuple[pd.DataFrame | None, str, str]],
                 line: Any | None) -> tuple[tuple[float, float], tuple[float, float]]:
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    for df, cx, cy in frames:
        if df is not None and len(df) and cx in df and cy in df:
            x = pd.to_numeric(df[cx], errors="coerce").to_numpy(float)
            y = pd.to_numeric(df[cy], errors="coerce").to_numpy(float)
            ok = np.isfinite(x) & np.isfinite(y)
            xs.append(x[ok])
            ys.append(y[ok])
    if line is not None:
        p1 = line["p1"] if isinstance(line, dict) else line.p1
        p2 = line["p2"] if isinstance(line, dict) else line.p2
        xs.append(np.array([p1[0], p2[0]], float))
        ys.append(np.array([p1[1], p2[1]], float))
    x = np.concatenate(xs) if xs else np.array([20.0, 70.0])
    y = np.concatenate(ys) if ys else np.array([1.4, 1.7])
    if x.size == 0:
        x = np.array([20.0, 70.0])
    if y.size == 0:
        y = np.array([1.4, 1.7])
    # robust range: ignore wild outliers of the pool cloud (0.5–99.5 percentile) but keep
    # every observation/reference inside
    xlo, xhi = float(np.nanmin(x)), float(np.nanmax(x))
    ylo, yhi = float(np.nanmin(y)), float(np.nanmax(y))
    dx = max(xhi - xlo, 5.0) * 0.06
    dy = max(yhi - ylo, 0.05) * 0.08
    return (xlo - dx, xhi + dx), (ylo - dy, yhi + dy)


def _custom(df: pd.DataFrame, cols: Sequence[str]) -> np.ndarray:
    out = []
    for c in cols:
        if c in df:
            out.append(df[c].astype(object).where(df[c].notna(), "").astype(str).to_numpy())
        else:
            out.append(np.full(len(df), "", dtype=object))
    return np.stack(out, axis=1) if out else np.empty((len(df), 0))


def pareto_figure(observations: pd.DataFrame | None = None, *,
                  limit_line: _LineLike | dict[str, Any] | None = None,
                  references: pd.DataFrame | None = None,
                  batch: pd.DataFrame | None = None,
                  pool: pd.DataFrame | None = None,
                  show_front: bool = True,
                  show_beyond_region: bool = True,
                  selected_id: str | None = None,
                  x_range: tuple[float, float] | None = None,
                  y_range: tuple[float, float] | None = None,
                  height: int = 600,
                  max_discrete_cycles: int = 12,
                  webgl_above: int = 300,
                  image_keys: bool = False) -> go.Figure:
    """n_D (y) versus ν_D (x) figure of a campaign.

    Traces (in drawing order, each omitted when its data is empty):
    ``pool (predicted)`` (Scattergl, for ~10k points), ``beyond the line`` (shaded region),
    ``limit line``, ``reference polymers (experimental)`` (diamonds: the shipped measured
    values, named on hover), ``measured (experimental)`` (observations whose origin is experimental,
    e.g. imported measurements; squares), ``other fidelity: <label>`` (simulations of another
    preset / force field / protocol than the campaign's, rows with ``same_fidelity`` False from
    ``core.ui.views.annotate_observations``: grey open circles, never on the front; a legend
    click hides them), one trace per cycle of the other observations
    (``initial data``, ``cycle 1``, ... followed by their origin, e.g.
    ``initial data (simulated · quick)`` — or a single ``observations`` trace with a
    colour bar when there are more than ``max_discrete_cycles`` cycles), ``Pareto front``
    (step line through observations with ``on_front``), ``proposed batch (mean ± σ)`` (error
    bars = 1 σ of the GP posterior in each objective).

    Text labels are drawn only on the proposed batch (its name, or ``#k`` in EHVI order) and
    the front members (their names), and only where they do not overlap (:func:`label_mask`;
    the batch first); every point names itself on hover. A click highlights a point without
    fading the others below :data:`UNSELECTED_OPACITY`.

    ``x_range``/``y_range`` fix the axis ranges (ν_D, n_D); by default they cover every
    observation, reference, batch point and the central 98 % of the pool cloud.

    Observations are drawn with SVG markers up to ``webgl_above`` points, with WebGL above.

    ``customdata[0]`` of every observation/batch/pool point is its id (string) so a click
    selection maps back to the store; observation and batch points also carry
    ``[id, label, psmiles, extra]`` for the hover text, an observation's label saying its
    origin, e.g. ``P1 (simulated, quick)`` or ``P1 (experimental)``; reference points carry
    ``[name, abbreviation]`` (pool points only the id, to keep the
    10k-point payload small). With ``image_keys`` every point's customdata gets one more, last
    element: :func:`core.chem.structure_images.image_key` of its SMILES (the file name of its hover
    picture); pool points are then ``[id, key]``.
    """
    if image_keys:
        from core.chem.structure_images import image_key  # noqa: PLC0415

        def _with_key(df: pd.DataFrame | None) -> pd.DataFrame | None:
            if df is None or not len(df) or "psmiles" not in df:
                return df
            return df.assign(_img=[image_key(p) if isinstance(p, str) and p else ""
                                   for p in df["psmiles"]])
        observations, references, batch, pool = (_with_key(observations), _with_key(references),
                                                 _with_key(batch), _with_key(pool))
    key_col = ["_img"] if image_keys else []
    obs = observations if observations is not None else pd.DataFrame()
    fig = go.Figure()
    xr, yr = _axis_ranges([(obs, "abbe_number", "n_D"), (references, "abbe_number", "n_D"),
                           (batch, "mu_abbe", "mu_n")], limit_line)
    if pool is not None and len(pool):
        # extend ranges modestly so the densest part of the cloud is visible
        px = pd.to_numeric(pool["abbe_pred"], errors="coerce").to_numpy(float)
        py = pd.to_numeric(pool["n_pred"], errors="coerce").to_numpy(float)
        ok = np.isfinite(px) & np.isfinite(py)
        if ok.any():
            qx = np.percentile(px[ok], [1, 99])
            qy = np.percentile(py[ok], [1, 99])
            xr = (min(xr[0], float(qx[0])), max(xr[1], float(qx[1])))
            yr = (min(yr[0], float(qy[0])), max(yr[1], float(qy[1])))
        # float32 + id-only customdata keep the 10k-point payload small (~0.2 MB)
        fig.add_trace(go.Scattergl(
            x=px.astype(np.float32), y=py.astype(np.float32), mode="markers", name=TRACE_POOL,
            marker=dict(size=4, color="rgba(120,120,140,0.25)"),
            customdata=_custom(pool, ["id", *key_col]),
            hovertemplate="pool %{customdata[0]}<br>ν<sub>D</sub> ≈ %{x:.1f}<br>"
                          "n<sub>D</sub> ≈ %{y:.4f}<extra>predicted</extra>",
            visible=True))

    # text labels only on the proposed batch and the front, none where they would overlap
    view_x = (float(x_range[0]), float(x_range[1])) if x_range is not None else xr
    view_y = (float(y_range[0]), float(y_range[1])) if y_range is not None else yr
    taken: list[tuple[float, float]] = []
    batch_text: list[str] | None = None
    if batch is not None and len(batch):
        order = (np.argsort(-pd.to_numeric(batch["ehvi"], errors="coerce").fillna(-np.inf)
                            .to_numpy(float), kind="stable") if "ehvi" in batch
                 else np.arange(len(batch)))
        names_b = _batch_names(batch)
        ranked = _labels([names_b[i] for i in order],
                         batch["mu_abbe"].to_numpy(float)[order],
                         batch["mu_n"].to_numpy(float)[order], view_x, view_y, taken)
        batch_text = [""] * len(batch)
        for i, t in zip(order, ranked):
            batch_text[int(i)] = t

    if limit_line is not None:
        lx, ly = limit_line_xy(limit_line, (xr[0] - 100.0, xr[1] + 100.0))
        label = (limit_line.get("label") if isinstance(limit_line, dict)
                 else getattr(limit_line, "label", "")) or "empirical limit"
        if show_beyond_region:
            top = yr[1] + 10.0
            fig.add_trace(go.Scatter(
                x=[lx[0], lx[1], lx[1], lx[0], lx[0]], y=[ly[0], ly[1], top, top, ly[0]],
                mode="lines", fill="toself", fillcolor="rgba(0,158,115,0.07)",
                line=dict(width=0), name=TRACE_BEYOND, hoverinfo="skip", showlegend=True))
        fig.add_trace(go.Scatter(
            x=lx, y=ly, mode="lines", name=TRACE_LIMIT,
            line=dict(color="#c0392b", width=2, dash="dash"),
            hovertemplate=f"{label}<br>ν<sub>D</sub> %{{x:.1f}} → n<sub>D</sub> %{{y:.4f}}"
                          "<extra>limit line</extra>"))

    if references is not None and len(references):
        lab = references["abbreviation"] if "abbreviation" in references else references["name"]
        lab = lab.where(lab.notna() & (lab.astype(str) != ""), references["name"]).astype(str)
        fig.add_trace(go.Scatter(  # no text: PS and PC sit on one spot; hover names them
            x=references["abbe_number"], y=references["n_D"], mode="markers",
            name=TRACE_REFERENCES,
            marker=dict(symbol="diamond-open", size=9, color="#555", line=dict(width=1.5)),
            customdata=_custom(references.assign(abbreviation=lab),
                               ["name", "abbreviation", *key_col]),
            hovertemplate="<b>%{customdata[1]} (experimental)</b><br>%{customdata[0]}<br>"
                          "reference polymer, measured value<br>ν<sub>D</sub> = %{x:.1f}<br>"
                          "n<sub>D</sub> = %{y:.4f}<extra></extra>"))

    if len(obs):
        cycles = pd.to_numeric(obs.get("cycle", pd.Series(0, index=obs.index)),
                               errors="coerce").fillna(0).astype(int)
        hover = ("<b>%{customdata[1]}</b><br>id %{customdata[0]} · %{customdata[3]}<br>"
                 "ν<sub>D</sub> = %{x:.2f}<br>n<sub>D</sub> = %{y:.4f}<br>"
                 "%{customdata[2]}<extra></extra>")
        o = obs.copy()
        o["_cyc"] = [observation_trace_name(c) for c in cycles]
        origins = _origins(o)
        names = (o["name"] if "name" in o else o["id"]).astype(object)
        names = names.where(names.notna() & (names.astype(str) != ""), o["id"]).astype(str)
        o["_label"] = [f"{n} ({g.short})" if g.short else n for n, g in zip(names, origins)]
        o["_name"] = names
        o["_origin"] = [g.label for g in origins]
        measured = np.array([g.kind == "experimental" for g in origins], dtype=bool)
        cols = ["id", "_label", "psmiles", "_cyc", *key_col]
        # SVG markers up to a few hundred points, WebGL beyond (draws 1000s in one pass)
        scatter = go.Scatter if len(o) <= webgl_above else go.Scattergl
        if measured.any():  # measured / literature values: one trace, whatever the cycle
            sub = o[measured]
            fig.add_trace(scatter(
                x=sub["abbe_number"], y=sub["n_D"], mode="markers", name=TRACE_MEASURED,
                marker=dict(size=9, color="#3b3b3b", line=dict(width=0.8, color="white"),
                            symbol="square"),
                customdata=_custom(sub, cols), hovertemplate=hover))
        # simulations of another fidelity (preset / force field / protocol; smoke = plumbing):
        # greyed, one legend entry per fidelity (a click on it toggles them), never on the front
        other = (~o["same_fidelity"].astype(bool).to_numpy() & ~measured
                 if "same_fidelity" in o else np.zeros(len(o), dtype=bool))
        if other.any():
            sub_o = o[other]
            for lab in dict.fromkeys(sub_o["fidelity"] if "fidelity" in sub_o else [""]):
                sub = sub_o[sub_o["fidelity"] == lab] if "fidelity" in sub_o else sub_o
                fig.add_trace(scatter(
                    x=sub["abbe_number"], y=sub["n_D"], mode="markers",
                    name=f"{TRACE_OTHER_FIDELITY}: {lab}" if lab else TRACE_OTHER_FIDELITY,
                    marker=dict(size=8, color="rgba(150,150,150,0.55)", symbol="circle-open",
                                line=dict(width=1.2, color="rgba(130,130,130,0.8)")),
                    customdata=_custom(sub, cols), hovertemplate=hover))
        rest = o[~measured & ~other]
        rest_cycles = cycles[~measured & ~other]
        uniq = sorted(rest_cycles.unique())
        if len(uniq) <= max_discrete_cycles:
            for c in uniq:
                in_cycle = rest[rest_cycles.to_numpy() == c]
                colour = CYCLE_COLORS[int(c) % len(CYCLE_COLORS)]
                for lab in dict.fromkeys(in_cycle["_origin"]):  # one entry per origin label
                    sub = in_cycle[in_cycle["_origin"] == lab]
                    fig.add_trace(scatter(
                        x=sub["abbe_number"], y=sub["n_D"], mode="markers",
                        name=observation_trace_name(c) + (
                            "" if lab == PointOrigin("unknown").label else f" ({lab})"),
                        marker=dict(size=9, color=colour, line=dict(width=0.8, color="white"),
                                    symbol="circle"),
                        customdata=_custom(sub, cols), hovertemplate=hover))
        elif len(rest):
            fig.add_trace(go.Scattergl(
                x=rest["abbe_number"], y=rest["n_D"], mode="markers", name="observations",
                marker=dict(size=7, color=rest_cycles, colorscale="Viridis", showscale=True,
                            colorbar=dict(title="cycle", thickness=12, len=0.6),
                            line=dict(width=0.5, color="white")),
                customdata=_custom(rest, cols), hovertemplate=hover))
        if show_front and "on_front" in o and o["on_front"].astype(bool).any():
            f = o[o["on_front"].astype(bool)].sort_values("abbe_number")
            # staircase of the non-dominated set for a maximise/maximise problem
            fx = f["abbe_number"].to_numpy(float)
            fy = f["n_D"].to_numpy(float)
            sx, sy = [], []
            for i in range(len(fx)):
                if i > 0:
                    sx.append(fx[i - 1])
                    sy.append(fy[i])
                sx.append(fx[i])
                sy.append(fy[i])
            fig.add_trace(go.Scatter(
                x=sx, y=sy, mode="lines", name=TRACE_FRONT,
                line=dict(color="#111", width=1.5, shape="linear"), hoverinfo="skip"))
            fig.add_trace(go.Scatter(
                x=fx, y=fy, mode="markers+text", name="front members", showlegend=False,
                text=_labels(f["_name"], fx, fy, view_x, view_y, taken),
                textposition="top center", textfont=dict(size=10, color="#222"),
                marker=dict(size=14, color="rgba(0,0,0,0)", line=dict(width=1.6, color="#111")),
                customdata=_custom(f.assign(_label=f["_label"]), cols), hovertemplate=hover))

    if batch is not None and len(batch):
        b = batch.copy()
        b["_label"] = b["name"] if "name" in b else b["id"]
        b["_ehvi"] = (b["ehvi"].map(lambda v: f"EHVI {v:.3g}") if "ehvi" in b else "")
        fig.add_trace(go.Scatter(
            x=b["mu_abbe"], y=b["mu_n"], mode="markers+text", name=TRACE_BATCH,
            text=batch_text, textposition="top center",
            textfont=dict(size=10, color="#8a3300"),
            marker=dict(symbol="star", size=13, color="#D55E00",
                        line=dict(width=0.8, color="#5a2000")),
            error_x=dict(type="data", array=b["sd_abbe"], color="rgba(213,94,0,0.45)",
                         thickness=1.2, width=3),
            error_y=dict(type="data", array=b["sd_n"], color="rgba(213,94,0,0.45)",
                         thickness=1.2, width=3),
            customdata=_custom(b, ["id", "_label", "psmiles", "_ehvi", *key_col]),
            hovertemplate="<b>proposed: %{customdata[1]}</b><br>id %{customdata[0]}<br>"
                          "ν<sub>D</sub> = %{x:.1f} ± %{error_x.array:.1f}<br>"
                          "n<sub>D</sub> = %{y:.4f} ± %{error_y.array:.4f}<br>"
                          "%{customdata[3]}<extra></extra>"))

    if selected_id is not None and len(obs) and "id" in obs:
        sel = obs[obs["id"].astype(str) == str(selected_id)]
        if len(sel):
            fig.add_trace(go.Scatter(
                x=sel["abbe_number"], y=sel["n_D"], mode="markers", name="selected",
                showlegend=False, hoverinfo="skip",
                marker=dict(size=20, color="rgba(0,0,0,0)",
                            line=dict(width=2.5, color="#e91e63"))))

    _soften_selection(fig)
    xr, yr = view_x, view_y
    fig.update_layout(
        uirevision=UIREVISION, height=height, template="plotly_white",
        margin=dict(l=60, r=20, t=40, b=55),
        legend=dict(orientation="h", yanchor="bottom", y=1.01, xanchor="left", x=0,
                    font=dict(size=11)),
        hovermode="closest", clickmode="event+select", dragmode="zoom",
        xaxis=dict(title=X_TITLE, range=list(xr), zeroline=False, showspikes=False),
        yaxis=dict(title=Y_TITLE, range=list(yr), zeroline=False),
    )
    return fig


def history_figure(history: pd.DataFrame, height: int = 300) -> go.Figure:
    """Hypervolume (left axis, line) and beyond-line count (right axis, bars) per cycle.

    Hypervolume is in the objective units the caller used (the dashboard passes the
    hypervolume of (ν_D, n_D) above the campaign's reference point).
    """
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    if history is not None and len(history):
        h = history.sort_values("cycle")
        fig.add_trace(go.Bar(x=h["cycle"], y=h["n_beyond"], name="beyond the line",
                             marker_color="rgba(0,158,115,0.55)",
                             hovertemplate="cycle %{x}: %{y} beyond<extra></extra>"),
                      secondary_y=True)
        fig.add_trace(go.Scatter(x=h["cycle"], y=h["hypervolume"], name="hypervolume",
                                 mode="lines+markers", line=dict(color="#0072B2", width=2),
                                 hovertemplate="cycle %{x}: HV %{y:.4g}<extra></extra>"),
                      secondary_y=False)
    fig.update_layout(uirevision=UIREVISION + "-history", height=height, template="plotly_white",
                      margin=dict(l=60, r=60, t=30, b=45),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
                      bargap=0.35)
    fig.update_xaxes(title_text="cycle", dtick=1)
    fig.update_yaxes(title_text="hypervolume", secondary_y=False)
    nmax = int(history["n_beyond"].max()) if history is not None and len(history) else 1
    fig.update_yaxes(title_text="# beyond line", secondary_y=True, showgrid=False,
                     range=[0, max(nmax, 1) * 1.15], tickformat="d",
                     dtick=max(1, int(np.ceil(max(nmax, 1) / 5))))
    return fig


def hypervolume_compare_figure(histories: Mapping[str, pd.DataFrame],
                               height: int = 460) -> go.Figure:
    """The hypervolume per cycle of several campaigns, one line each (named by the campaign).

    ``histories``: campaign name -> frame with ``cycle`` and ``hypervolume`` (the per-cycle
    metrics the store records, ``Store.cycles``); rows without a hypervolume are left out.
    Hypervolume is in the product of the objectives' units (n_D · ν_D) above each campaign's
    own reference point, so lines compare directly only where those points agree.  Colours
    follow :data:`CYCLE_COLORS` from its second entry (the first is the grey of initial data).
    """
    fig = go.Figure()
    for k, (name, h) in enumerate(histories.items()):
        if h is None or not len(h) or "hypervolume" not in h:
            continue
        h = h.dropna(subset=["hypervolume"]).sort_values("cycle")
        colour = CYCLE_COLORS[1 + k % (len(CYCLE_COLORS) - 1)]
        fig.add_trace(go.Scatter(
            x=h["cycle"].astype(int), y=h["hypervolume"].astype(float), name=str(name),
            mode="lines+markers", line=dict(color=colour, width=2), marker=dict(size=7),
            hovertemplate=f"{_hover_safe(name)}<br>cycle %{{x}}: HV %{{y:.4g}}<extra></extra>"))
    fig.update_layout(uirevision=UIREVISION + "-compare", height=height,
                      template="plotly_white", margin=dict(l=60, r=20, t=40, b=45),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
                      hovermode="closest")
    fig.update_xaxes(title_text="cycle", dtick=1, rangemode="tozero")
    fig.update_yaxes(title_text="hypervolume")
    return fig


def _hover_safe(text: Any) -> str:
    """``text`` for a Plotly hover template: HTML and ``%{…}`` placeholders escaped."""
    import html  # noqa: PLC0415

    return html.escape(str(text)).replace("{", "&#123;")


#: the dark inks of these figures (labels, the front, reference and measured markers) and what
#: they become on a dark background (lighter greys / orange of about the same contrast)
DARK_INK: dict[str, str] = {"#111": "#eeeeee", "#222": "#e6e6e6", "#333": "#dddddd",
                            "#555": "#bbbbbb", "#3b3b3b": "#cfcfcf", "#8a3300": "#ffb27a"}
_INK_PATHS: tuple[tuple[str, ...], ...] = (
    ("marker", "color"), ("marker", "line", "color"), ("line", "color"),
    ("textfont", "color"), ("unselected", "textfont", "color"))


def apply_theme(fig: go.Figure, dark: bool) -> go.Figure:
    """Make ``fig`` readable on the page's light or dark background; changes ``fig`` in place
    and returns it.

    For figures drawn outside ``st.plotly_chart`` (the Pareto chart component draws in its own
    frame, which Streamlit's theme does not reach): transparent paper and plot area (the page
    shows through), Plotly's ``plotly_dark`` / ``plotly_white`` template for text and grid,
    and on dark the figure's own dark inks swapped for light ones (:data:`DARK_INK`).  Figures
    given to ``st.plotly_chart`` need none of this: Streamlit applies its theme to their
    template.  Exports (SVG / PDF) should use the figure before this call (white paper).
    """
    clear = "rgba(0,0,0,0)"
    fig.update_layout(template="plotly_dark" if dark else "plotly_white",
                      paper_bgcolor=clear, plot_bgcolor=clear)
    if not dark:
        return fig
    for tr in fig.data:
        for path in _INK_PATHS:
            obj = tr
            for name in path[:-1]:
                obj = getattr(obj, name, None)
                if obj is None:
                    break
            value = getattr(obj, path[-1], None) if obj is not None else None
            if isinstance(value, str) and value in DARK_INK:
                setattr(obj, path[-1], DARK_INK[value])
    return fig
