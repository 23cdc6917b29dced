"""Tests of core.ui.figures: trace names, data placement, error bars, uirevision."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.ui.figures import (TRACE_BATCH, TRACE_FRONT, TRACE_LIMIT, TRACE_POOL, TRACE_REFERENCES,
                             UIREVISION, history_figure, limit_line_xy, pareto_figure)

LINE = {"p1": (30.0, 1.60), "p2": (60.0, 1.50), "label": "test line"}


def _obs() -> pd.DataFrame:
    return pd.DataFrame({
        "id": ["a", "b", "c", "d"], "name": ["A", "B", "C", "D"],
        "psmiles": ["*CC*"] * 4,
        "abbe_number": [30.0, 40.0, 50.0, 35.0], "n_D": [1.65, 1.60, 1.55, 1.50],
        "cycle": [0, 0, 1, 2], "on_front": [True, True, True, False],
    })


def _names(fig) -> list[str]:
    return [t.name for t in fig.data]


def test_limit_line_xy_extrapolates_the_two_points() -> None:
    x, y = limit_line_xy(LINE, (0.0, 90.0))
    assert x.tolist() == [0.0, 90.0]
    assert y[0] == pytest.approx(1.70) and y[1] == pytest.approx(1.40)
    with pytest.raises(ValueError):
        limit_line_xy({"p1": (30, 1.5), "p2": (30, 1.6)}, (0, 1))


def test_pareto_figure_traces_and_layout() -> None:
    refs = pd.DataFrame({"name": ["poly(methyl methacrylate)"], "abbreviation": ["PMMA"],
                         "n_D": [1.492], "abbe_number": [58.0]})
    batch = pd.DataFrame({"id": ["x1", "x2"], "mu_n": [1.6, 1.62], "sd_n": [0.02, 0.01],
                          "mu_abbe": [45.0, 38.0], "sd_abbe": [3.0, 2.0], "ehvi": [0.1, 0.2]})
    pool = pd.DataFrame({"id": [str(i) for i in range(50)],
                         "abbe_pred": np.linspace(20, 60, 50),
                         "n_pred": np.linspace(1.7, 1.45, 50)})
    fig = pareto_figure(_obs(), limit_line=LINE, references=refs, batch=batch, pool=pool)
    names = _names(fig)
    for n in (TRACE_LIMIT, TRACE_FRONT, TRACE_BATCH, TRACE_POOL, TRACE_REFERENCES,
              "initial data", "cycle 1", "cycle 2"):
        assert n in names, n
    assert fig.layout.uirevision == UIREVISION
    assert fig.layout.xaxis.title.text.startswith("Abbe number")
    assert fig.layout.yaxis.title.text.startswith("refractive index")
    pool_tr = fig.data[names.index(TRACE_POOL)]
    assert pool_tr.type == "scattergl" and len(pool_tr.x) == 50
    init = fig.data[names.index("initial data")]
    assert list(init.x) == [30.0, 40.0] and list(init.customdata[:, 0]) == ["a", "b"]
    b = fig.data[names.index(TRACE_BATCH)]
    assert list(b.error_y.array) == [0.02, 0.01] and list(b.error_x.array) == [3.0, 2.0]
    ref = fig.data[names.index(TRACE_REFERENCES)]
    assert ref.text is None and list(ref.customdata[:, 1]) == ["PMMA"]  # named on hover
    # limit line passes through the two given points
    lim = fig.data[names.index(TRACE_LIMIT)]
    slope = (lim.y[1] - lim.y[0]) / (lim.x[1] - lim.x[0])
    assert slope == pytest.approx(-0.1 / 30)
    assert lim.y[0] + slope * (30.0 - lim.x[0]) == pytest.approx(1.60)
    # axis range covers every observation and reference
    xr, yr = fig.layout.xaxis.range, fig.layout.yaxis.range
    assert xr[0] < 30 and xr[1] > 58 and yr[0] < 1.492 and yr[1] > 1.65


def test_fixed_axis_ranges() -> None:
    fig = pareto_figure(_obs(), limit_line=LINE, x_range=(25, 45), y_range=(1.5, 1.7))
    assert list(fig.layout.xaxis.range) == [25, 45]
    assert list(fig.layout.yaxis.range) == [1.5, 1.7]


def test_front_staircase_dominated_boundary() -> None:
    fig = pareto_figure(_obs(), limit_line=None)
    fr = fig.data[_names(fig).index(TRACE_FRONT)]
    # front a(30,1.65) b(40,1.60) c(50,1.55): down then right at each step
    assert list(fr.x) == [30, 30, 40, 40, 50]
    assert list(fr.y) == [1.65, 1.60, 1.60, 1.55, 1.55]


def test_many_cycles_use_single_colour_scaled_trace() -> None:
    n = 200
    obs = pd.DataFrame({"id": [str(i) for i in range(n)], "abbe_number": np.linspace(20, 60, n),
                        "n_D": np.linspace(1.7, 1.5, n), "cycle": np.arange(n) // 10})
    fig = pareto_figure(obs, max_discrete_cycles=12)
    tr = fig.data[_names(fig).index("observations")]
    assert tr.marker.showscale and len(tr.x) == n
    fig2 = pareto_figure(obs, max_discrete_cycles=100, webgl_above=100)
    assert {t.type for t in fig2.data if t.name.startswith("cycle")} == {"scattergl"}
    fig3 = pareto_figure(obs, max_discrete_cycles=100)
    assert {t.type for t in fig3.data if t.name.startswith("cycle")} == {"scatter"}


def test_empty_figure_still_has_axes_and_selected_marker() -> None:
    fig = pareto_figure(None, limit_line=LINE)
    assert TRACE_LIMIT in _names(fig)
    fig2 = pareto_figure(_obs(), selected_id="c")
    sel = fig2.data[_names(fig2).index("selected")]
    assert list(sel.x) == [50.0]


def test_history_figure() -> None:
    h = pd.DataFrame({"cycle": [0, 1, 2], "hypervolume": [1.0, 1.5, 2.0], "n_beyond": [1, 3, 4]})
    fig = history_figure(h)
    names = _names(fig)
    assert names == ["beyond the line", "hypervolume"]
    assert list(fig.data[1].y) == [1.0, 1.5, 2.0]
    assert fig.layout.yaxis2.range[1] >= 4
    assert len(history_figure(pd.DataFrame()).data) == 0


# ---------------------------------------------------------------- origin of every point
def test_observation_origin_from_source_provenance_and_result() -> None:
    from core.ui.figures import observation_origin

    imp = observation_origin("experimental", {"origin": "experimental", "source": "Ando 2015"},
                             {"origin": "experimental"})
    assert (imp.kind, imp.label, imp.short, imp.citation) == \
        ("experimental", "experimental", "experimental", "Ando 2015")
    assert "Ando 2015" in imp.detail
    # the shipped demo records: source "initial", computed with the quick preset (their
    # provenance also carries an experimental_reference for comparison: still simulated)
    demo = observation_origin("initial", {"preset": "quick", "experimental_reference":
                                          {"n_D": 1.492}}, {"preset": "quick", "n_D": 1.42})
    assert (demo.kind, demo.label, demo.short) == ("simulated", "simulated · quick",
                                                   "simulated, quick")
    assert "raw values" in demo.detail and "calibrated" in demo.detail
    assert observation_origin("simulation", None, {"n_D": 1.5}).label == "simulated"
    assert observation_origin("simulation", float("nan"), {"preset": "smoke"}).label == \
        "simulated · smoke"
    assert observation_origin("reference (experimental)", {"source": "handbook"}).kind == \
        "experimental"
    assert observation_origin("initial", {"kind": "experimental"}).kind == "experimental"
    # copied into a new campaign: result/provenance travel along, so does the origin
    assert observation_origin("initial", {"copied_from": "demo:3", "preset": "quick"}).label \
        == "simulated · quick"
    unk = observation_origin("initial", None, None)
    assert (unk.kind, unk.short, unk.label) == ("unknown", "", "origin not recorded")


def test_pareto_figure_labels_every_point_by_origin() -> None:
    """The same name P1 as a reference diamond (experimental) and a simulated point: the
    legend and hover say which is which; 'initial data' is never used for simulated data
    without saying so."""
    from core.ui.figures import TRACE_MEASURED

    obs = pd.DataFrame({
        "id": [1, 2, 3, 4], "name": ["P1", "PS", "mine", None],
        "psmiles": ["*CC*"] * 4,
        "abbe_number": [30.0, 31.0, 50.0, 40.0], "n_D": [1.70, 1.59, 1.55, 1.60],
        "cycle": [0, 0, 1, 1],
        "source": ["initial", "experimental", "simulation", "simulation"],
        "provenance": [{"preset": "quick"}, {"origin": "experimental", "source": "Kasarova"},
                       None, None],
        "result": [{"preset": "quick"}, {"origin": "experimental"}, {"preset": "smoke"},
                   {"preset": "smoke"}],
        "on_front": [True, False, True, False]})
    refs = pd.DataFrame({"name": ["poly(thioether) P1"], "abbreviation": ["P1"],
                         "n_D": [1.72], "abbe_number": [28.0]})
    fig = pareto_figure(obs, limit_line=LINE, references=refs)
    names = _names(fig)
    for n in (TRACE_REFERENCES, TRACE_MEASURED, "initial data (simulated · quick)",
              "cycle 1 (simulated · smoke)"):
        assert n in names, (n, names)
    assert TRACE_REFERENCES == "reference polymers (experimental)"
    assert "initial data" not in names and "cycle 1" not in names
    sim = fig.data[names.index("initial data (simulated · quick)")]
    assert list(sim.customdata[:, 1]) == ["P1 (simulated, quick)"]
    meas = fig.data[names.index(TRACE_MEASURED)]
    assert list(meas.customdata[:, 1]) == ["PS (experimental)"] and meas.marker.symbol == \
        "square"
    c1 = fig.data[names.index("cycle 1 (simulated · smoke)")]
    assert list(c1.customdata[:, 1]) == ["mine (simulated, smoke)", "4 (simulated, smoke)"]
    ref = fig.data[names.index(TRACE_REFERENCES)]
    assert ref.text is None and "(experimental)" in ref.hovertemplate
    assert ref.hovertemplate.startswith("<b>%{customdata[1]} (experimental)</b>")
    assert list(ref.customdata[0]) == ["poly(thioether) P1", "P1"]
    # front members hover with the origin too
    front = [t for t in fig.data if t.name == "front members"][0]
    assert "P1 (simulated, quick)" in list(front.customdata[:, 1])


def test_apply_theme_dark_clears_backgrounds_and_lightens_the_dark_inks() -> None:
    from core.ui.figures import DARK_INK, apply_theme

    refs = pd.DataFrame({"name": ["poly(methyl methacrylate)"], "abbreviation": ["PMMA"],
                         "n_D": [1.492], "abbe_number": [58.0]})
    light = pareto_figure(_obs(), limit_line=LINE, references=refs)
    dark = apply_theme(pareto_figure(_obs(), limit_line=LINE, references=refs), dark=True)
    assert dark.layout.paper_bgcolor == "rgba(0,0,0,0)" == dark.layout.plot_bgcolor
    assert dark.layout.template.layout.font.color != light.layout.template.layout.font.color
    front = dark.data[_names(dark).index(TRACE_FRONT)]
    assert front.line.color == DARK_INK["#111"]  # the front's black line is light on dark
    ref = dark.data[_names(dark).index(TRACE_REFERENCES)]
    assert ref.marker.color == DARK_INK["#555"]
    inks = {str(v) for t in dark.to_dict()["data"] for v in _colours(t)}
    assert not inks & set(DARK_INK), inks & set(DARK_INK)
    # light: the page's white shows through, the inks stay
    lit = apply_theme(pareto_figure(_obs(), limit_line=LINE, references=refs), dark=False)
    assert lit.layout.paper_bgcolor == "rgba(0,0,0,0)"
    assert lit.data[_names(lit).index(TRACE_FRONT)].line.color == "#111"
    hist = apply_theme(history_figure(pd.DataFrame({"cycle": [0, 1], "hypervolume": [1.0, 2.0],
                                                    "n_beyond": [0, 1]})), dark=True)
    assert hist.layout.paper_bgcolor == "rgba(0,0,0,0)"


def _colours(obj) -> list:
    """Every ``color`` value anywhere in a trace's dict."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += [v] if k == "color" and isinstance(v, str) else _colours(v)
    elif isinstance(obj, list):
        for v in obj:
            out += _colours(v)
    return out


def test_hypervolume_compare_figure_one_line_per_campaign() -> None:
    from core.ui.figures import hypervolume_compare_figure

    a = pd.DataFrame({"cycle": [2, 0, 1], "hypervolume": [3.0, 1.0, None]})
    b = pd.DataFrame({"cycle": [0], "hypervolume": [2.5]})
    fig = hypervolume_compare_figure({"alpha": a, "b<1>": b, "empty": pd.DataFrame()})
    assert _names(fig) == ["alpha", "b<1>"]
    assert list(fig.data[0].x) == [0, 2] and list(fig.data[0].y) == [1.0, 3.0]  # no HV: left out
    assert fig.data[0].line.color != fig.data[1].line.color
    assert "b&lt;1&gt;" in fig.data[1].hovertemplate
    assert fig.layout.xaxis.title.text == "cycle" and fig.layout.yaxis.title.text == "hypervolume"
