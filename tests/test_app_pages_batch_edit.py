"""Batch edits on the dashboard (AppTest on the seeded store, ``tests.helpers.seed_store``): a
candidate added by hand gets the surrogate's predictions and EHVI and is listed at the top,
marked; every edit recomputes the batch's joint expected gain; "Add to batch" on the Pool page
puts the selected rows into the batch waiting for approval, or says that there is none."""
from __future__ import annotations

import numpy as np
import pytest

from core.campaign.cycle import batch_joint_gain
from core.chem.polymer import canonical_psmiles, polymer_key
from core.store.batches import HAND_ADDED
from core.ui.views import batch_table_order, data_signature, joint_value_text
from tests.helpers import app_test, visible_text

pytest.importorskip("streamlit.testing.v1")
from streamlit.testing.v1 import AppTest  # noqa: E402

NEW = canonical_psmiles("*CC(*)c1ccc(Cl)cc1")


def _errors(at: AppTest) -> list[str]:
    return [e.value for e in at.exception] + [e.value for e in at.error]


def _batch_page() -> AppTest:
    at = app_test().run()
    at.switch_page("pages/batch.py").run()
    assert not _errors(at), _errors(at)
    return at


def _add_smiles(at: AppTest, smiles: str) -> None:
    [t for t in at.text_input if "Polymer SMILES" in t.label][0].input(smiles)
    [b for b in at.get("button") if getattr(b, "label", "") == "Add to batch"][0].click().run()


def test_hand_added_candidate_is_on_top_with_predictions_and_ehvi(seeded) -> None:
    store, bid = seeded["store"], seeded["batch_proposed"]
    at = _batch_page()
    _add_smiles(at, "*C(C*)c1ccc(Cl)cc1")             # another spelling of NEW
    assert not _errors(at), _errors(at)
    table = at.dataframe[0].value
    top = table.iloc[0]
    assert top["psmiles"] == NEW and bool(top["hand_added"]) and top["source"] == HAND_ADDED
    assert not table["hand_added"].iloc[1:].any() and len(table) == 5
    for c in ("n_D", "σ n_D", "ν_D", "σ ν_D", "EHVI", "P(beyond)"):
        assert np.isfinite(float(top[c])), c
    assert 1.3 < top["n_D"] < 1.9 and top["σ n_D"] > 0 and top["EHVI"] >= 0
    row = store.batch_candidates(bid).set_index("key").loc[polymer_key(NEW)]
    assert top["EHVI"] == pytest.approx(row["ehvi"]) and top["n_D"] == pytest.approx(
        row["pred_mean_n_D"])
    # said what was added, and the joint value counts it
    said = [visible_text(s.value) for s in at.success]
    assert any(f"Added {NEW} to batch {bid}" in s and "n_D 1." in s and "ν_D" in s
               and "EHVI" in s for s in said), said
    b = store.get_batch(bid)
    assert b["joint_value"] == pytest.approx(batch_joint_gain(store, bid)[0]) and b["joint_value"] > 0
    text = joint_value_text(b["joint_value"], b["info"]["expected_gain_se"], 5)
    assert any(text in c.value for c in at.caption), text
    assert "Approve and launch 5" in at.button(key="approve").label
    # a second one goes on top of the first
    _add_smiles(at, "*CC(*)c1ccc(Br)cc1")
    assert not _errors(at), _errors(at)
    table = at.dataframe[0].value
    assert list(table["hand_added"]) == [True, True, False, False, False, False]
    assert table["psmiles"].iloc[1] == NEW and "Br" in table["psmiles"].iloc[0]


def test_a_polymer_in_the_batch_or_observed_is_refused_and_nothing_changes(seeded) -> None:
    store, bid = seeded["store"], seeded["batch_proposed"]
    n0 = len(store.batch_candidates(bid))
    member = store.batch_candidates(bid)["psmiles"].iloc[2]
    at = _batch_page()
    _add_smiles(at, member)
    assert not at.exception, [e.value for e in at.exception]
    assert any("already in batch" in e.value for e in at.error), [e.value for e in at.error]
    pmma = store.observations("demo").set_index("name").loc["PMMA", "psmiles"]
    _add_smiles(at, pmma)
    assert any("already observed" in e.value for e in at.error), [e.value for e in at.error]
    assert len(store.batch_candidates(bid)) == n0
    assert store.get_batch(bid)["joint_value"] is None       # the seed stored none


def test_deselect_and_reject_recompute_the_joint_value(seeded) -> None:
    store, bid = seeded["store"], seeded["batch_proposed"]
    at = _batch_page()
    order = batch_table_order(store.batch_candidates(bid))
    key = f"cands_{bid}_{data_signature(list(order['key']))}"
    at.session_state[key] = {"edited_rows": {0: {"select": False}}, "added_rows": [],
                             "deleted_rows": []}
    at.run()
    assert not _errors(at), _errors(at)
    after = store.batch_candidates(bid).set_index("key")
    assert not after.loc[order["key"].iloc[0], "selected"]
    v3 = store.get_batch(bid)["joint_value"]
    assert v3 == pytest.approx(batch_joint_gain(store, bid)[0]) and v3 > 0
    assert "Approve and launch 3" in at.button(key="approve").label
    assert any(joint_value_text(v3, store.get_batch(bid)["info"]["expected_gain_se"], 3)
               in c.value for c in at.caption)
    label = order["name"].iloc[1] or order["psmiles"].iloc[1]
    at.multiselect(key="rej_pick").select(label).run()
    at.button(key="rej_go").click().run()
    assert not _errors(at), _errors(at)
    v2 = store.get_batch(bid)["joint_value"]
    assert v2 == pytest.approx(batch_joint_gain(store, bid)[0]) and 0 < v2 < v3


def _select_pool_rows(at: AppTest, psmiles: list[str]) -> None:
    table = at.dataframe[0].value
    rows = [int(np.flatnonzero(table["psmiles"] == p)[0]) for p in psmiles]
    at.session_state[at.dataframe[0].key] = {"selection": {"rows": rows, "columns": []}}
    at.run()


def test_pool_page_adds_selected_rows_to_the_pending_batch(seeded) -> None:
    store, bid = seeded["store"], seeded["batch_proposed"]
    picks = [canonical_psmiles("*CC(*)C#N"), canonical_psmiles("*CC(F)(F)*")]
    at = app_test().run()
    at.switch_page("pages/pool.py").run()
    assert not _errors(at), _errors(at)
    assert any(f"Adds to batch {bid}" in c.value for c in at.caption)
    assert at.button(key="pool_add_to_batch").disabled          # nothing selected yet
    _select_pool_rows(at, picks)
    btn = at.button(key="pool_add_to_batch")
    assert "Add 2 selected" in btn.label and not btn.disabled
    btn.click().run()
    assert not _errors(at), _errors(at)
    got = store.batch_candidates(bid).set_index("key")
    assert len(got) == 6
    for p in picks:
        row = got.loc[polymer_key(p)]
        assert row["source"] == HAND_ADDED and row["selected"]
        assert np.isfinite(row[["pred_mean_n_D", "pred_std_abbe_number", "ehvi"]].astype(float)
                           ).all()
    assert any("Added 2 candidates" in s.value for s in at.success)
    assert store.get_batch(bid)["joint_value"] == pytest.approx(batch_joint_gain(store, bid)[0])
    # and the Batch page lists them at the top
    at.switch_page("pages/batch.py").run()
    top = at.dataframe[0].value.iloc[:2]
    assert top["hand_added"].all() and set(top["psmiles"]) == set(picks)


def test_pool_page_refuses_a_member_and_says_when_no_batch_waits(seeded) -> None:
    store, bid = seeded["store"], seeded["batch_proposed"]
    member = store.batch_candidates(bid)["psmiles"].iloc[0]
    at = app_test().run()
    at.switch_page("pages/pool.py").run()
    _select_pool_rows(at, [member, canonical_psmiles("*CC(*)C#N")])
    at.button(key="pool_add_to_batch").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("already in batch" in e.value for e in at.error), [e.value for e in at.error]
    assert len(store.batch_candidates(bid)) == 4                 # neither was added
    store.approve_batch(bid, actor="test")
    at = app_test().run()
    at.switch_page("pages/pool.py").run()
    assert any("No batch is waiting for approval" in c.value for c in at.caption)
    _select_pool_rows(at, [canonical_psmiles("*CC(*)C#N")])
    at.button(key="pool_add_to_batch").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("no batch waiting for approval" in e.value for e in at.error), \
        [e.value for e in at.error]
    assert len(store.batch_candidates(bid)) == 4
