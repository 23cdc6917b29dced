"""Overview: a pool candidate clicked on the Pareto plot can be added to the batch waiting for
approval ("Add to batch" in the details panel -> core.campaign.cycle.add_to_pending_batch);
observed points have no such button; refusals are said in the panel and change nothing.

AppTest on the seeded store of tests/helpers.seed_store (a proposed batch of 4 and pool
predictions of 12 polymers); a click is the chart component's value, set in the session state
the way the browser sends it ({curve, customdata, x, y, t})."""
from __future__ import annotations

import base64

import numpy as np
import pytest

from core.config import BatchState
from core.store.batches import HAND_ADDED
from tests.helpers import app_test, pareto_spec, visible_text

pytest.importorskip("streamlit.testing.v1")

POOL_TRACE = "pool (predicted)"
BUTTON = "plot_add_to_batch"


def _values(arr) -> np.ndarray:
    """A trace's x or y: a list, or Plotly's typed-array spec {dtype, bdata}."""
    if isinstance(arr, dict):
        return np.frombuffer(base64.b64decode(arr["bdata"]), dtype=np.dtype(arr["dtype"]))
    return np.asarray(arr, dtype=float)


def _click(at, trace: dict, i: int, t: int) -> None:
    """What the chart component sends when point ``i`` of ``trace`` is clicked."""
    cd = [str(c) for c in trace["customdata"][i]]
    at.session_state["pareto"] = {"curve": trace["name"], "customdata": cd, "t": t,
                                  "x": float(_values(trace["x"])[i]),
                                  "y": float(_values(trace["y"])[i])}


def _pool_point(at, pool_id: str) -> tuple[dict, int]:
    tr = [t for t in pareto_spec(at)["figure"]["data"] if t.get("name") == POOL_TRACE][0]
    ids = [str(c[0]) for c in tr["customdata"]]
    return tr, ids.index(pool_id)


def _buttons(at) -> list:
    return [b for b in at.button if b.key == BUTTON]


def _texts(items) -> list[str]:
    """What a reader sees of these elements (markdown rendered)."""
    return [visible_text(x.value) for x in items]


def test_a_clicked_pool_candidate_is_added_to_the_waiting_batch(seeded) -> None:
    store, bid = seeded["store"], seeded["batch_proposed"]
    preds = store.latest_predictions("demo").set_index("pool_id")
    pid = "6"                                   # *CC(*)C#N: neither observed nor in the batch
    psmiles = preds.loc[pid, "psmiles"]
    at = app_test().run()
    assert not at.exception, _texts(at.exception)
    assert not _buttons(at)                     # nothing clicked: no button
    tr, i = _pool_point(at, pid)
    _click(at, tr, i, 1)
    at.run()
    assert not at.exception, _texts(at.exception)
    assert f"pool candidate {pid} (predicted)" in _texts(at.markdown)
    nu = float(_values(tr["x"])[i])
    assert any(m.startswith(f"νD = {nu:.2f}") for m in _texts(at.markdown))  # its values
    assert any(f"Adds it to batch {bid}" in c for c in _texts(at.caption))
    assert len(store.batch_candidates(bid)) == 4
    _buttons(at)[0].click().run()
    assert not at.exception, _texts(at.exception)
    got = store.batch_candidates(bid)
    assert len(got) == 5
    row = got[got["psmiles"] == psmiles].iloc[0]
    assert row["source"] == HAND_ADDED and row["selected"] and str(row["pool_id"]) == pid
    assert np.isfinite(row[["pred_mean_n_D", "pred_mean_abbe_number", "ehvi"]].astype(float)).all()
    assert any(s.startswith(f"Added {psmiles} to batch {bid}") for s in _texts(at.success)), \
        _texts(at.success)
    audit = store.audit_log("demo")
    assert audit[audit["action"] == "add_candidates"]["actor"].tolist() == ["dashboard"]
    # the redrawn plot shows it among the proposed batch
    batch_tr = [t for t in pareto_spec(at)["figure"]["data"]
                if t.get("name") == "proposed batch (mean ± σ)"][0]
    assert str(row["key"]) in {str(c[0]) for c in batch_tr["customdata"]}
    # a second click on the same point: refused by name, nothing added twice
    _buttons(at)[0].click().run()
    assert any("already in batch" in e for e in _texts(at.error)), _texts(at.error)
    assert len(store.batch_candidates(bid)) == 5


def test_refusals_are_said_and_observed_points_have_no_button(seeded) -> None:
    store, bid = seeded["store"], seeded["batch_proposed"]
    preds = store.latest_predictions("demo").set_index("pool_id")
    obs = store.observations("demo")
    observed = [p for p, ps in preds["psmiles"].items() if ps in set(obs["psmiles"])]
    assert observed                              # PMMA is both in the pool and observed
    at = app_test().run()
    tr, i = _pool_point(at, observed[0])
    _click(at, tr, i, 1)
    at.run()
    _buttons(at)[0].click().run()
    assert not at.exception, _texts(at.exception)
    assert any(e.startswith("Could not add") and "already observed" in e
               for e in _texts(at.error)), _texts(at.error)
    assert len(store.batch_candidates(bid)) == 4
    # an observed point: its details, no "Add to batch"
    sim = obs[obs["source"] == "simulation"].iloc[0]
    otr = [t for t in pareto_spec(at)["figure"]["data"]
           if t.get("name") == "cycle 1 (simulated · smoke)"][0]
    j = [str(c[0]) for c in otr["customdata"]].index(str(sim["id"]))
    _click(at, otr, j, 2)
    at.run()
    assert not at.exception, _texts(at.exception)
    assert f"{sim['name']} (simulated, smoke)" in _texts(at.markdown)
    assert not _buttons(at)
    # no batch waits any more (approved): said beside the button and when it is pressed
    store.approve_batch(bid, actor="test")
    assert store.get_batch(bid)["status"] == BatchState.APPROVED
    at = app_test().run()
    tr, i = _pool_point(at, "6")
    _click(at, tr, i, 3)
    at.run()
    assert any("No batch is waiting for approval" in c for c in _texts(at.caption)), \
        _texts(at.caption)
    _buttons(at)[0].click().run()
    assert not at.exception, _texts(at.exception)
    assert any("no batch waiting for approval" in e for e in _texts(at.error)), _texts(at.error)
    assert len(store.batch_candidates(bid)) == 4
