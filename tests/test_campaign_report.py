"""campaign.report: results per cycle and substructures beyond the limit line, hand-checked."""
from __future__ import annotations

import math

import numpy as np
import pytest

from core.campaign.cycle import limit_line_of
from core.campaign.report import beyond_line_substructures, cycle_report, report_markdown
from core.store import Store


@pytest.fixture()
def store_with_cycles(tmp_path):
    s = Store(tmp_path / "r.db")
    s.create_campaign("c", {"reference_point": [1.3, 10.0]}, actor="test")
    line = limit_line_of(s.campaign_config("c"))
    # one point far beyond the line (a sulfone), one far below it (an alkane)
    rows = [("*CCS(=O)(=O)CC*", 1.80, 45.0, 0), ("*CC*", 1.40, 30.0, 0),
            ("*CCSCC*", 1.75, 42.0, 1), ("*CC(*)C", 1.45, 50.0, 1)]
    for ps, n, v, cyc in rows:
        s.add_observation("c", ps, {"n_D": n, "abbe_number": v}, source="initial", cycle=cyc,
                          actor="test")
    return s, line


def test_cycle_report_counts_and_best(store_with_cycles):
    s, line = store_with_cycles
    beyond = line.is_beyond(np.array([1.80, 1.40, 1.75, 1.45]), np.array([45.0, 30.0, 42.0, 50.0]))
    assert list(beyond) == [True, False, True, False]
    rep = cycle_report(s, "c")
    assert list(rep["cycle"]) == [0, 1]
    assert list(rep["evaluated"]) == [2, 2]
    assert list(rep["n_observations"]) == [2, 4]
    assert list(rep["beyond_line"]) == [1, 2]
    assert list(rep["new_beyond"]) == [1, 1]
    # best n_D among ν_D >= 40: cycle 0 only the sulfone (1.80); cycle 1 still 1.80
    assert list(rep["best_n_D_abbe40"]) == [1.80, 1.80]
    # hypervolume above (1.3, 10): front {(1.80, 45), (1.45, 50)} -> 0.5*35 + 0.15*5
    assert rep["hypervolume"].iloc[1] == pytest.approx(0.5 * 35 + 0.15 * 5)
    assert math.isnan(rep["wall_min"].iloc[0])


def test_beyond_line_substructures(store_with_cycles):
    s, _ = store_with_cycles
    sub = beyond_line_substructures(s, "c").set_index("group")
    assert sub.loc["contains S", "n_beyond_with"] == 2 and sub.loc["contains S", "n_beyond"] == 2
    assert sub.loc["sulfonyl", "frac_beyond"] == pytest.approx(0.5)
    assert sub.loc["sulfide / thioether", "n_all_with"] == 1
    assert sub.loc["contains S", "frac_all"] == pytest.approx(0.5)
    md = report_markdown(s, "c")
    assert "| 1 | 2 | 0 | 2 (+1) |" in md and "| sulfonyl | 1 of 2 (50 %) |" in md
