"""The Pool and Batch pages show each candidate's estimated CPU cost (campaign preset), SA score,
motif flags and simulability pre-check, and can hide flagged candidates (issue 15, part 1);
the Settings page sets the three proposal settings.  AppTest on the seeded store
(``tests.helpers.seed_store``: smoke preset), plus one flagged polymer (poly(styrenesulfonic
acid), a free sulfonic acid) uploaded to the pool and added to the proposed batch."""
from __future__ import annotations

import numpy as np
import pytest

from core.chem.polymer import canonical_psmiles, polymer_key
from core.optimize.cost_estimate import screen
from tests.helpers import app_test

pytest.importorskip("streamlit.testing.v1")

FLAGGED = canonical_psmiles("*CC(*)c1ccc(S(=O)(=O)O)cc1")
SCREENING = ["cost_cpu_min", "sa_score", "flags", "simulable"]


@pytest.fixture()
def with_flagged(seeded):
    store, bid = seeded["store"], seeded["batch_proposed"]
    store.add_pool_candidates("demo", [{"psmiles": FLAGGED, "key": polymer_key(FLAGGED),
                                        "source": "upload"}], actor="test")
    store.add_batch_candidate(bid, {"psmiles": FLAGGED, "key": polymer_key(FLAGGED),
                                    "source": "manual"}, actor="test")
    return seeded


def _apply(at) -> None:
    [b for b in at.get("button") if getattr(b, "label", "") == "Apply"][0].click().run()


def test_pool_page_shows_screening_columns_and_hides_flagged(with_flagged) -> None:
    at = app_test().run()
    at.switch_page("pages/pool.py").run()
    assert not at.exception, [e.value for e in at.exception]
    df = at.dataframe[0].value
    assert set(SCREENING) <= set(df.columns) and FLAGGED in set(df["psmiles"])
    expect = screen(list(df["psmiles"]), "smoke").set_index("psmiles")   # the seeded preset
    got = df.set_index("psmiles")
    np.testing.assert_allclose(got["cost_cpu_min"].astype(float),
                               expect.loc[got.index, "cost_cpu_min"], rtol=1e-12)
    assert got.loc[FLAGGED, "flags"] == "free sulfonic acid"
    assert (got.drop(index=FLAGGED)["flags"] == "").all()
    assert any("1 flagged" in c.value for c in at.caption)
    at.checkbox(key="pool_hide_flagged").check()
    _apply(at)
    assert not at.exception, [e.value for e in at.exception]
    shown = at.dataframe[0].value
    assert FLAGGED not in set(shown["psmiles"]) and len(shown) == len(df) - 1
    # by flag name, and by estimated cost (CPU minutes of the smoke preset)
    at.checkbox(key="pool_hide_flagged").uncheck()
    at.multiselect(key="pool_hide_flags").select("free sulfonic acid")
    _apply(at)
    assert FLAGGED not in set(at.dataframe[0].value["psmiles"])
    limit = float(np.median(df["cost_cpu_min"].astype(float)))
    at.multiselect(key="pool_hide_flags").unselect("free sulfonic acid")
    at.number_input(key="pool_max_cost").set_value(limit)
    _apply(at)
    cheap = at.dataframe[0].value
    assert 0 < len(cheap) < len(df) and (cheap["cost_cpu_min"].astype(float) <= limit).all()


def test_batch_page_shows_screening_columns_and_hides_flagged(with_flagged) -> None:
    at = app_test().run()
    at.switch_page("pages/batch.py").run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value                               # the batch's data editor
    assert set(SCREENING) <= set(table.columns) and len(table) == 5
    row = table.set_index("psmiles").loc[FLAGGED]
    assert row["flags"] == "free sulfonic acid" and bool(row["simulable"])
    assert row["cost_cpu_min"] == pytest.approx(
        screen([FLAGGED], "smoke")["cost_cpu_min"].iloc[0], rel=1e-12)
    assert "Approve and launch 5" in at.button(key="approve").label
    at.checkbox(key=f"batch_hide_flagged_{with_flagged['batch_proposed']}").check().run()
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    assert len(table) == 4 and FLAGGED not in set(table["psmiles"])
    # hidden is not deselected: the approval still counts it, and says so
    assert "Approve and launch 5" in at.button(key="approve").label
    assert any("1 flagged candidate(s) hidden, 1 of them selected" in c.value
               for c in at.caption)


def test_settings_page_saves_the_screening_settings(seeded) -> None:
    store = seeded["store"]
    at = app_test().run()
    at.switch_page("pages/settings.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.checkbox(key="cs_demo_excl_unsim").value is True    # the default
    at.checkbox(key="cs_demo_excl_flagged").check()
    at.checkbox(key="cs_demo_cost_aware").check()
    [b for b in at.get("button") if getattr(b, "label", "") == "Save settings"][0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    cfg = store.campaign_config("demo")
    assert (cfg.exclude_flagged, cfg.exclude_unsimulable, cfg.cost_aware) == (True, True, True)
    assert at.checkbox(key="cs_demo_cost_aware").value is True  # shows the stored value


def test_filter_and_join_screening_rules_and_bad_input() -> None:
    import pandas as pd

    from core.ui.views import filter_screening, join_screening, screening_summary

    ps = [canonical_psmiles(s) for s in ("*CC(*)c1ccccc1", "*CC(*)c1ccc(S(=O)(=O)O)cc1",
                                         "*CC(*)(C)C(=O)OC" + "C" * 37)]
    table = join_screening(pd.DataFrame({"id": ["a", "b", "c"], "psmiles": ps}),
                           screen(ps, "quick"))
    assert list(table["flagged"]) == [False, True, False]
    assert list(table["simulable"]) == [True, True, False]        # c: QM molecule too large
    assert list(filter_screening(table, hide_flagged=True)["id"]) == ["a", "c"]
    assert list(filter_screening(table, hide_flags=["free sulfonic acid"])["id"]) == ["a", "c"]
    assert list(filter_screening(table, hide_flags=["peroxide"])["id"]) == ["a", "b", "c"]
    assert list(filter_screening(table, hide_unsimulable=True)["id"]) == ["a", "b"]
    cost = table.set_index("id")["cost_cpu_min"]
    assert cost["a"] < cost["c"]
    assert list(filter_screening(table, max_cost_min=float(cost["a"]))["id"]) == ["a"]
    assert screening_summary(table).startswith("1 flagged · 1 fail the simulability pre-check")
    with pytest.raises(ValueError, match="unknown motif flag"):
        filter_screening(table, hide_flags=["glitter"])
    with pytest.raises(ValueError, match="≥ 0 CPU minutes"):
        filter_screening(table, max_cost_min=-1.0)
    with pytest.raises(ValueError, match="needs the columns"):
        filter_screening(table[["id", "psmiles"]], hide_flagged=True)
    with pytest.raises(ValueError, match="row for row"):
        join_screening(table.iloc[:2], screen(ps, "quick"))
