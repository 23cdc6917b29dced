"""Dashboard ergonomics: the Pareto chart's Plotly config, click highlight and labels; plot
export; Benjamini–Hochberg q-values and the pinned sulfur rows on the Substructures page; Pool
uploads; the limit-line form.  Pure-function tests plus AppTest runs on the seeded store
(``seeded``, tests/conftest.py)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.ui.figures import (MODEBAR_REMOVE, TRACE_BATCH, TRACE_REFERENCES, UNSELECTED_OPACITY,
                             chart_config, label_mask, pareto_figure, pareto_file_stem, short_label)
from tests.helpers import LINE, app_test, crowded_chart_data, pareto_spec, visible_text

# ---------------------------------------------------------------- 1. the chart
def test_chart_config_wheel_scrolls_the_page_and_no_dead_buttons() -> None:
    cfg = chart_config("demo-pareto")
    assert cfg["scrollZoom"] is False and cfg["displaylogo"] is False
    assert {"sendDataToCloud", "editInChartStudio", "select2d", "lasso2d"} <= \
        set(cfg["modeBarButtonsToRemove"])
    assert set(MODEBAR_REMOVE) == set(cfg["modeBarButtonsToRemove"])
    assert cfg["toImageButtonOptions"] == {"format": "png", "filename": "demo-pareto",
                                           "scale": 3}


def test_pareto_file_stem_is_a_safe_file_name() -> None:
    assert pareto_file_stem("demo") == "demo-pareto"
    assert pareto_file_stem("sulfur run/1 <b>") == "sulfur_run_1_b-pareto"
    assert pareto_file_stem("../..") == "campaign-pareto"


def test_click_keeps_the_other_points_visible() -> None:
    """Plotly's click selection faded every other point (and label) to 20 %; now the others
    keep >= 60 % and the clicked point grows."""
    obs, refs, batch = crowded_chart_data()
    pool = pd.DataFrame({"id": ["p1", "p2"], "abbe_pred": [30.0, 40.0], "n_pred": [1.5, 1.6]})
    fig = pareto_figure(obs, limit_line=LINE, references=refs, batch=batch, pool=pool)
    assert fig.layout.clickmode == "event+select"
    marker_traces = [t for t in fig.data if "markers" in (t.mode or "")]
    assert len(marker_traces) >= 5
    for t in marker_traces:
        assert t.unselected.marker.opacity >= 0.6, t.name
        assert t.selected.marker.opacity == 1.0 and t.selected.marker.size > \
            (t.marker.size if isinstance(t.marker.size, (int, float)) else 9), t.name
        if "text" in t.mode:  # labels are not faded either
            assert t.unselected.textfont.color, t.name
    assert UNSELECTED_OPACITY >= 0.6


def test_text_labels_only_on_front_and_batch_and_never_overlapping() -> None:
    obs, refs, batch = crowded_chart_data()
    fig = pareto_figure(obs, limit_line=LINE, references=refs, batch=batch)
    by_name = {t.name: t for t in fig.data}
    # references (PS and PC on one spot) and plain observations: hover only
    assert by_name[TRACE_REFERENCES].mode == "markers" and by_name[TRACE_REFERENCES].text is None
    for t in fig.data:
        if t.name not in ("front members", TRACE_BATCH):
            assert "text" not in (t.mode or ""), t.name
    front = by_name["front members"]
    b = by_name[TRACE_BATCH]
    # batch first, best EHVI first: "best" wins over the SMILES-named neighbour; the third
    # candidate is labelled too; a SMILES is never a label
    assert list(b.text) == ["", "best", "third"]
    # of the two front members on one spot only one is labelled
    assert list(front.text) == ["alpha", "", "gamma", "delta"]
    xr, yr = fig.layout.xaxis.range, fig.layout.yaxis.range
    pts = [(x, y) for t in (b, front) for x, y, s in zip(t.x, t.y, t.text) if s]
    assert label_mask([p[0] for p in pts], [p[1] for p in pts], xr, yr).all()


def test_label_mask_hand_checked() -> None:
    # axis 0..100 x 0..1, box 0.10 x 0.045: (50, .5) is placed, (55, .52) clashes with it,
    # (70, .5) and (50, .6) are far enough, (200, .5) is outside the ranges
    keep = label_mask([50, 55, 70, 50, 200], [0.5, 0.52, 0.5, 0.6, 0.5], (0, 100), (0, 1))
    assert keep.tolist() == [True, False, True, True, False]
    assert short_label("poly(methyl methacrylate)") == "poly(methyl m…"
    assert short_label("PS") == "PS" and short_label(None) == ""


def test_overview_sends_the_chart_config(seeded) -> None:
    """The config the chart component receives: wheel does not zoom, no dead buttons, the
    camera saves '<campaign>-pareto.png' at print resolution."""
    at = app_test().run()
    assert not at.exception, [e.value for e in at.exception]
    cfg = pareto_spec(at)["config"]
    assert cfg["scrollZoom"] is False and cfg["displaylogo"] is False
    assert "sendDataToCloud" in cfg["modeBarButtonsToRemove"]
    assert cfg["toImageButtonOptions"]["filename"] == "demo-pareto"
    assert cfg["toImageButtonOptions"]["scale"] == 3


# ---------------------------------------------------------------- 2. export
def test_export_specs_name_the_files_after_the_campaign() -> None:
    from core.ui.figure_export import export_specs

    specs = {s.fmt: s for s in export_specs("sulfur run 1")}
    assert set(specs) == {"svg", "pdf", "png"}
    assert specs["svg"].file_name == "sulfur_run_1-pareto.svg"
    assert specs["pdf"].file_name == "sulfur_run_1-pareto.pdf"
    assert specs["pdf"].mime == "application/pdf"
    assert specs["png"].file_name == "sulfur_run_1-pareto.png" and specs["png"].scale == 3


def test_print_figure_draws_webgl_as_vector_and_leaves_the_figure_alone() -> None:
    from core.ui.figure_export import print_figure

    pool = pd.DataFrame({"id": ["p1", "p2"], "abbe_pred": [30.0, 40.0], "n_pred": [1.5, 1.6]})
    fig = pareto_figure(None, limit_line=LINE, pool=pool)
    assert fig.data[0].type == "scattergl"
    out = print_figure(fig)
    assert {t["type"] for t in out["data"]} == {"scatter"}
    assert "height" not in out["layout"] and fig.data[0].type == "scattergl"


def test_export_unavailable_names_the_missing_browser(monkeypatch) -> None:
    import core.ui.figure_export as fe

    monkeypatch.setattr(fe, "_browser_path", lambda: None)
    why = fe.export_unavailable()
    if why and "kaleido is not installed" in why:
        pytest.skip(why)
    assert why and "Chromium" in why
    with pytest.raises(fe.ExportUnavailable):
        fe.figure_image({"data": [], "layout": {}}, "svg")
    monkeypatch.undo()
    monkeypatch.setenv("BROWSER_PATH", "/nonexistent/chrome")
    assert fe._browser_path() is None  # an unusable override is no browser


@pytest.mark.timeout(240)
def test_figure_image_svg_pdf_and_print_png_offline() -> None:
    """Real kaleido + the system Chromium (skipped where either is missing)."""
    import struct

    from core.ui.figure_export import export_unavailable, figure_image

    why = export_unavailable()
    if why:
        pytest.skip(why)
    obs, refs, batch = crowded_chart_data()
    fig = pareto_figure(obs, limit_line=LINE, references=refs, batch=batch)
    svg = figure_image(fig, "svg")
    assert svg.lstrip().startswith(b"<svg") and b"limit line" in svg
    assert figure_image(fig, "pdf").startswith(b"%PDF")
    png = figure_image(fig, "png", scale=3)
    assert png.startswith(b"\x89PNG") and struct.unpack(">II", png[16:24]) == (2700, 1800)


@pytest.mark.timeout(240)
def test_a_failed_export_leaves_no_browser_running() -> None:
    """A timed-out export stops the headless browser it started (real kaleido + Chromium)."""
    import core.ui.figure_export as fe

    why = fe.export_unavailable()
    if why:
        pytest.skip(why)
    before = fe._browser_children()
    obs, refs, batch = crowded_chart_data()
    fig = pareto_figure(obs, limit_line=LINE, references=refs, batch=batch)
    with pytest.raises(Exception):  # kaleido's own timeout error type varies by version
        fe.figure_image(fig, "png", scale=3, timeout_s=0.001)
    assert fe._browser_children() - before == set()


def test_overview_offers_svg_pdf_png_export_named_after_the_campaign(seeded) -> None:
    from core.ui.figure_export import export_unavailable

    at = app_test().run()
    assert not at.exception, [e.value for e in at.exception]
    why = export_unavailable()
    if why:  # no kaleido / browser: the page says so in one line
        assert any("export is not available" in c.value for c in at.caption)
        return
    buttons = {b.proto.label: b.proto for b in at.get("download_button")
               if b.proto.id and "pareto_export" in b.proto.id}
    assert set(buttons) == {"SVG", "PDF", "PNG (print, 3×)"}, list(buttons)
    assert "demo-pareto.svg" in buttons["SVG"].help
    assert "demo-pareto.pdf" in buttons["PDF"].help
    assert "demo-pareto.png" in buttons["PNG (print, 3×)"].help


# ---------------------------------------------------------------- 3. substructures
def test_benjamini_hochberg_hand_checked() -> None:
    from core.chem.substructures import benjamini_hochberg

    # sorted: 0.005*4/1 = 0.02, 0.01*4/2 = 0.02, 0.03*4/3 = 0.04, 0.04*4/4 = 0.04
    q = benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.005]))
    assert q == pytest.approx([0.02, 0.04, 0.04, 0.02])
    # step-up: 0.8*2/1 = 1.6 is lowered to the next one's 0.9*2/2 = 0.9; never above 1
    assert benjamini_hochberg(np.array([0.9, 0.8])) == pytest.approx([0.9, 0.9])
    assert benjamini_hochberg(np.array([1.0, 1.0, 0.5])) == pytest.approx([1.0, 1.0, 1.0])
    # NaN stays NaN and does not count in m
    q = benjamini_hochberg(np.array([np.nan, 0.5, 0.01]))
    assert np.isnan(q[0]) and q[1:] == pytest.approx([0.5, 0.02])
    assert benjamini_hochberg(np.array([])).shape == (0,)


def test_enrichment_q_values_and_pinned_seed_check() -> None:
    from core.chem.substructures import (DEFAULT_LIBRARY, SEED_CHECK_GROUPS, benjamini_hochberg,
                                         enrichment, pin_groups)

    ps = ["*CC(*)c1ccccc1", "*CC(*)C(=O)OC", "*c1ccc(S(=O)(=O)c2ccc(*)cc2)cc1",
          "*CSC*", "*CC(*)c1ccc2ccccc2c1", "*CC(*)C#N"]
    df = enrichment(ps, [False, False, True, True, True, False])
    cols = list(df.columns)
    assert cols.index("q_value") == cols.index("p_value") + 1 and "q_enriched" in cols
    assert df["q_value"].to_numpy() == pytest.approx(benjamini_hochberg(df["p_value"]))
    assert df["q_enriched"].to_numpy() == pytest.approx(benjamini_hochberg(df["p_enriched"]))
    assert (df["q_enriched"] >= df["p_enriched"] - 1e-12).all()
    pinned = pin_groups(df)
    assert list(pinned["group"][:2]) == list(SEED_CHECK_GROUPS) == ["contains S", "sulfonyl"]
    assert len(pinned) == len(DEFAULT_LIBRARY) and set(pinned["group"]) == set(df["group"])
    rest = [g for g in df["group"] if g not in SEED_CHECK_GROUPS]
    assert list(pinned["group"][2:]) == rest  # the others keep their p order


def test_substructures_page_pins_the_seed_check_and_shows_q(seeded) -> None:
    at = app_test().run()
    at.switch_page("pages/substructures.py").run()
    assert not at.exception, [e.value for e in at.exception]
    df = at.dataframe[0].value
    assert list(df["group"][:2]) == ["contains S", "sulfonyl"], list(df["group"])
    assert {"q_value", "q_enriched"} <= set(df.columns)
    assert (df["q_enriched"] >= df["p_enriched"] - 1e-12).all()


def test_substructures_user_pattern_name_is_shown_literally(seeded) -> None:
    """A name with '&', '<…>' and a backslash appears exactly as typed (the success message
    showed repr(name), which doubled the backslash)."""
    name = r"S & <b>sulf</b> \ 1"
    at = app_test().run()
    at.switch_page("pages/substructures.py").run()
    at.text_input[[t.label for t in at.text_input].index("Name")].input(name)
    at.text_input[[t.label for t in at.text_input].index("SMARTS")].input("[#16]")
    [b for b in at.get("button") if getattr(b, "label", "") == "Add"][0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert [visible_text(s.value) for s in at.success] == [f"added {name}"]
    assert any(visible_text(c.value) == f"your patterns: {name}" for c in at.caption), \
        [c.value for c in at.caption]
    assert name in set(at.dataframe[0].value["group"])
    assert name in at.selectbox(key="sub_group").options


# ---------------------------------------------------------------- 4. pool uploads
def test_parse_upload_reads_what_the_cli_reads() -> None:
    from core.pool import _SMILES_COLUMNS
    from core.ui.views import SMILES_COLUMNS, parse_upload

    assert SMILES_COLUMNS == _SMILES_COLUMNS  # the page accepts the CLI's column names
    assert parse_upload("SMILES,Name\n*CC*,PE\n\n*CC(*)C,\n", csv_file=True) == [
        {"psmiles": "*CC*", "name": "PE"}, {"psmiles": "*CC(*)C", "name": None}]
    assert parse_upload("psmiles\t name\n*CC*\tx\n", csv_file=True) == [
        {"psmiles": "*CC*", "name": "x"}]
    # a one-column .csv without a header is a plain list, as in `python -m core.pool import`
    assert [r["psmiles"] for r in parse_upload("*CC*\n*CCC*\n", csv_file=True)] == \
        ["*CC*", "*CCC*"]


@pytest.mark.parametrize("text, csv_file, words", [
    ("", True, "is empty"), ("\ufeff\n \n", True, "is empty"), ("", False, "is empty"),
    ("psmiles,name\n", True, "header (psmiles, name) but no rows"),
    ("foo,bar\n1,2\n", True, "no polymer SMILES column"),
    ("# only a comment\n", False, "lists no polymer SMILES"),
    ('psmiles\n"*CC*\n', True, "not valid CSV"),
])
def test_parse_upload_says_what_is_wrong(text, csv_file, words) -> None:
    from core.ui.views import parse_upload

    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")) as exc:
        parse_upload(text, csv_file=csv_file, label="mine.csv")
    assert "mine.csv" in str(exc.value)


def _pool_count(at) -> str:
    return next(c.value.split(" · ")[0] for c in at.caption if " candidates" in c.value)


def test_pool_page_empty_csv_gets_a_clear_message(seeded) -> None:
    at = app_test().run()
    at.switch_page("pages/pool.py").run()
    at.file_uploader(key="pool_upload").set_value(("empty.csv", b"", "text/csv"))
    at.run()
    at.button(key="pool_add").click().run()
    assert not at.exception, [e.value for e in at.exception]
    shown = [visible_text(e.value) for e in at.error]
    assert any(s.startswith("empty.csv is empty: nothing to add.") for s in shown), shown
    assert len(seeded["store"].pool_candidates("demo")) == 0


def test_pool_page_accepts_a_smiles_column_and_updates_the_count(seeded) -> None:
    store = seeded["store"]
    at = app_test().run()
    at.switch_page("pages/pool.py").run()
    assert _pool_count(at) == "12 candidates"
    at.file_uploader(key="pool_upload").set_value(
        ("mine.csv", b"smiles,name\n*CC(*)c1ccc(Cl)cc1,chloro-PS\n", "text/csv"))
    at.run()
    at.button(key="pool_add").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    extra = store.pool_candidates("demo")
    assert len(extra) == 1 and extra["name"].iloc[0] == "chloro-PS"
    assert _pool_count(at) == "13 candidates"  # the count is the one after the import
    assert any("Added 1 candidates" in s.value for s in at.success)
    # pasted rows too (the file is still there: its row is now a duplicate), and the rows not
    # added are still listed after the rerun
    at.text_area(key="pool_paste").input("*CC(*)c1ccc(Br)cc1\nnot-a-polymer\n").run()
    at.button(key="pool_add").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert _pool_count(at) == "14 candidates"
    assert any("2 rows were not added" in w.value for w in at.warning), \
        [w.value for w in at.warning]
    bad = at.dataframe[-1].value.set_index("row")["problem"]
    assert bad.index.tolist() == [1, 3] and bad[1] == "already in the pool"


# ---------------------------------------------------------------- 5. limit-line form
def test_limit_line_form_keeps_save_and_reset_while_the_input_is_invalid(seeded) -> None:
    store = seeded["store"]
    at = app_test().run()
    at.switch_page("pages/settings.py").run()
    x1 = at.number_input(key="ll_x1").value
    x2_default = at.number_input(key="ll_x2").value
    at.number_input(key="ll_x2").set_value(x1).run()  # both points on one Abbe number
    assert not at.exception, [e.value for e in at.exception]
    assert any("different Abbe numbers" in e.value for e in at.error), [e.value for e in at.error]
    save, reset = at.button(key="ll_save"), at.button(key="ll_reset")
    assert save.disabled and "different Abbe numbers" in save.help
    assert not reset.disabled
    # Reset brings the default line and its points back
    store.update_config("demo", {"limit_line": {"p1": [31.0, 1.55], "p2": [60.0, 1.5],
                                                "label": "mine"}}, actor="test")
    reset.click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert store.get_campaign("demo")["config"].get("limit_line") is None
    assert at.number_input(key="ll_x2").value == x2_default
    assert not at.error and not at.button(key="ll_save").disabled
    assert any(s.value.startswith("Reset to the default") for s in at.success)
    # the preview does not zoom on the mouse wheel
    import json

    chart = [c for c in at.get("plotly_chart") if "limit line" in c.proto.spec][0]
    assert json.loads(chart.proto.config)["scrollZoom"] is False
