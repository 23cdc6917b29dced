"""Tests of core.ui.views (page logic without Streamlit) with hand-checked numbers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.ui.views import (annotate_observations, beyond_mask, compute_kpis, cycle_history,
                           data_signature, filter_pool, format_elapsed, front_mask, heartbeat_state,
                           log_tail, parse_smiles_lines, reference_point_xy, with_structure_images)
from tests.helpers import visible_text

LINE = {"p1": (30.0, 1.60), "p2": (60.0, 1.50)}


def _obs() -> pd.DataFrame:
    # line: n = 1.70 - x/300 ; at 30 -> 1.60, at 45 -> 1.55, at 60 -> 1.50
    return pd.DataFrame({"id": list("abcde"),
                         "abbe_number": [30.0, 45.0, 60.0, 40.0, 50.0],
                         "n_D": [1.62, 1.54, 1.52, 1.55, np.nan],
                         "cycle": [0, 0, 1, 1, 2]})


def test_beyond_mask_and_front_mask() -> None:
    o = _obs()
    assert beyond_mask(o.abbe_number, o.n_D, LINE).tolist() == [True, False, True, False, False]
    assert front_mask(o.abbe_number, o.n_D).tolist() == [True, True, True, True, False]

    class Line:
        p1, p2 = (30.0, 1.60), (60.0, 1.50)

        def is_beyond(self, n, abbe):  # core.chem.optics.LimitLine argument order
            return np.asarray(n) > 1.53

    assert beyond_mask(o.abbe_number, o.n_D, Line()).tolist() == [True, True, False, True, False]


def test_beyond_mask_with_real_limit_line() -> None:
    from core.chem.optics import LimitLine

    line = LimitLine(p1=(30.0, 1.60), p2=(60.0, 1.50))
    o = _obs()
    assert beyond_mask(o.abbe_number, o.n_D, line).tolist() == [True, False, True, False, False]


def test_reference_point_from_config() -> None:
    from core.ui.views import reference_point_from_config

    cfg = {"objectives": ["n_D", "abbe_number"], "reference_point": [1.30, 10.0]}
    assert reference_point_from_config(cfg) == (10.0, 1.30)
    with pytest.raises(ValueError):
        reference_point_from_config({"objectives": ["a", "b"], "reference_point": [1, 2]})


def test_annotate_and_history_hand_checked() -> None:
    o = annotate_observations(_obs(), LINE)
    assert o["beyond"].sum() == 2
    h = cycle_history(_obs(), (20.0, 1.40), LINE)
    assert h["cycle"].tolist() == [0, 1]
    assert h["n_evaluated"].tolist() == [2, 4]
    assert h["n_beyond"].tolist() == [1, 2]
    # cycle 0 front (30,1.62),(45,1.54) above ref (20,1.40): 10*0.22 + 15*0.14 = 4.3
    assert h["hypervolume"].iloc[0] == pytest.approx(4.3)
    # cycle 1 adds (40,1.55),(60,1.52): widths 10,10,5,15 x heights .22,.15,.14,.12 = 5.25
    assert h["hypervolume"].iloc[1] == pytest.approx(10 * .22 + 10 * .15 + 5 * .14 + 15 * .12)
    assert cycle_history(pd.DataFrame(), (0, 0), LINE).empty


def test_compute_kpis() -> None:
    k = compute_kpis(_obs(), ["done", "running", "failed", "queued", "done"], (20.0, 1.40), LINE)
    assert k["evaluated"] == 4 and k["beyond"] == 2 and k["beyond_frac"] == 0.5
    assert k["running"] == 2 and k["failed"] == 1 and k["cycle"] == 1
    assert k["hypervolume"] == pytest.approx(6.2)  # 2.2 + 1.5 + 0.7 + 1.8
    k0 = compute_kpis(pd.DataFrame(), [], (0, 0), LINE, current_cycle=3)
    assert k0["evaluated"] == 0 and k0["cycle"] == 3


def test_reference_point_and_signature_and_format() -> None:
    assert reference_point_xy({"n_D": 1.4, "abbe_number": 20}) == (20.0, 1.4)
    assert reference_point_xy([20, 1.4]) == (20.0, 1.4)
    with pytest.raises(ValueError):
        reference_point_xy({"x": 1})
    assert data_signature(1, {"a": 2}) == data_signature(1, {"a": 2})
    assert data_signature(1, 2) != data_signature(2, 1)
    assert format_elapsed(None) == "—"
    assert format_elapsed(5) == "5 s"
    assert format_elapsed(184) == "3 min 04 s"
    assert format_elapsed(7500) == "2 h 05 min"


def test_heartbeat_state() -> None:
    assert heartbeat_state(None)[0] == "never"
    assert heartbeat_state(100.0, now=110.0)[0] == "alive"
    st, txt = heartbeat_state(100.0, now=200.0, stale_after_s=30)
    assert st == "stale" and "1 min 40 s" in txt


def test_filter_pool_and_images() -> None:
    pool = pd.DataFrame({"id": ["p1", "p2", "p3"],
                         "psmiles": ["*CC(*)c1ccccc1", "*CCS*", "*CCO*"],
                         "n_pred": [1.59, 1.62, 1.46], "abbe_pred": [31.0, 45.0, 55.0],
                         "ehvi": [0.1, 0.3, 0.2]})
    matches = pd.DataFrame({"contains S": [False, True, False]})
    assert filter_pool(pool, text="S")["id"].tolist() == ["p2"]
    assert filter_pool(pool, groups=["contains S"], matches=matches)["id"].tolist() == ["p2"]
    assert filter_pool(pool, n_min=1.5, sort_by="ehvi")["id"].tolist() == ["p2", "p1"]
    assert filter_pool(pool, require_beyond=True, line=LINE)["id"].tolist() == ["p2"]
    with pytest.raises(ValueError):
        filter_pool(pool, groups=["contains S"])
    img = with_structure_images(pool.head(1))
    assert img.columns[0] == "structure"
    assert img["structure"].iloc[0].startswith("data:image/svg+xml;base64,")


def test_parse_smiles_lines_and_log_tail(tmp_path) -> None:
    assert parse_smiles_lines("# c\n*CC*  name\n\n*CCO*,x\n") == ["*CC*", "*CCO*"]
    # only ASCII blanks separate: a no-break space / line separator stays in the SMILES (and
    # validation names it) instead of silently cutting "*CC*<NBSP>c1ccccc1" to "*CC*"
    assert parse_smiles_lines("*CC*\u00a0c1ccccc1\n*CC*\u2028C\r\n*CCO*\tPEO\n") == [
        "*CC*\u00a0c1ccccc1", "*CC*\u2028C", "*CCO*"]
    with pytest.raises(ValueError):
        parse_smiles_lines("*CC*\n" * 3, max_rows=2)
    log = tmp_path / "run" / "calc.log"
    log.parent.mkdir()
    log.write_text("\n".join(f"line {i}" for i in range(100)))
    assert log_tail(str(log), str(tmp_path), n_lines=2) == "line 98\nline 99"
    outside = tmp_path.parent / "elsewhere.log"
    assert "outside" in log_tail(str(outside), str(tmp_path / "run"))
    assert "not readable" in log_tail(str(tmp_path / "missing.log"), str(tmp_path))


def test_structure_svg_highlight_and_invalid_input() -> None:
    from core.chem.structure_images import placeholder_svg, polymer_svg, svg_data_uri
    from core.chem.substructures import DEFAULT_LIBRARY, match_atoms

    ps = "*c1ccc(S(=O)(=O)c2ccc(*)cc2)cc1"
    plain = polymer_svg(ps, 200, 150)
    hl = polymer_svg(ps, 200, 150, highlight_atoms=match_atoms(
        ps, DEFAULT_LIBRARY["sulfonyl"].smarts))
    assert plain.startswith("<svg") and "</svg>" in plain
    assert hl != plain and "#FF8C19" in hl.upper()  # highlight colour (1.0, 0.55, 0.1)
    bad = polymer_svg("C1CC<script>", 200, 150)
    assert bad == placeholder_svg("invalid SMILES", 200, 150) and "<script>" not in bad
    assert "&lt;b&gt;" in placeholder_svg("<b>")
    assert svg_data_uri("<svg/>", base64_encode=False) == "data:image/svg+xml;utf8,%3Csvg/%3E"


def test_simulation_summary_names_force_field_protocol_and_cross_check() -> None:
    from core.ui.views import simulation_summary

    s = simulation_summary({"density": 1.05, "density_stderr": 0.003, "forcefield": "sage",
                            "protocol": "quick-md1-direct", "tg_sim_K": 401.6,
                            "tg_sim_stderr_K": 12.0, "density_packing_estimate": 1.10,
                            "warnings": ["w1"]})
    assert s["density"] == "1.050 ± 0.003 g/cm³"
    assert s["made_with"] == "OpenFF Sage · quick-md1-direct"
    assert s["tg_sim"].startswith("Tg_sim 402 ± 12 K")
    assert "−4.5" in s["cross_check"].replace("-", "−") and s["warnings"] == ["w1"]
    old = simulation_summary({"density": 1.0})
    assert "not recorded" in old["made_with"] and old["tg_sim"] is None


# ---------------------------------------------------------------- Markdown shown literally
@pytest.mark.parametrize("text", [
    "*C(*)(F)Cl", "a polymer SMILES needs exactly two '*' atoms, found 3 in '*C(*)(F)C(*)Cl'",
    "*CC(*)[N+](=O)[O-]", "*c1ccc(S/C=C(c2ccc(Cl)cc2)\\S*)cc1", "poly_a_b _x_ __y__",
    "`x` and ``y``", "<b>bold?</b>", "# not a heading", "1. not a list", "- not a list",
    "> not a quote", "$x$ is not math", "~~not struck~~", "&amp; stays", "x | y",
    "![not](an image)", "line one\n- line two\n=== three",
])
def test_escape_markdown_shows_text_literally(text: str) -> None:
    from core.ui.views import escape_markdown

    assert visible_text(escape_markdown(text)) == text
    if "*" in text and "\n" not in text:
        assert visible_text(text) != text  # the raw text would indeed be mangled


def test_markdown_code_spans_any_text() -> None:
    from core.ui.views import markdown_code

    for text in ("*C(*)(F)Cl", "a`b", "`x`", "C[N+](=O)[O-]"):
        src = markdown_code(text)
        assert visible_text(src) == text, src
        assert "<code>" in __import__("markdown_it").MarkdownIt().render(src)
    assert markdown_code("") == ""
