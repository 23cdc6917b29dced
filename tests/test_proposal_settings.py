"""The campaign settings that narrow or re-rank a proposal (issue 15, part 1):
``exclude_flagged``, ``exclude_unsimulable`` and ``cost_aware`` (EHVI per CPU hour), in the pure
``core.optimize.proposal.propose`` and through a stored campaign."""
from __future__ import annotations

import json
import sqlite3

import numpy as np
import pandas as pd
import pytest

from core.campaign.commands import create_campaign
from core.campaign.cycle import propose_batch
from core.config import CampaignConfig, InvalidConfig, Strategy
from core.optimize.acquisition import ehvi_2d, select_batch
from core.optimize.cost_estimate import screen
from core.optimize.proposal import (Candidates, Observations, Pending, ProposalConfig,
                                    ProposalError, propose, select_cost_aware)
from core.pool import load_default_pool
from core.store import Store
from tests.helpers import POOL, reference_records, write_pool_csv

N_POOL, N_INIT = 40, 6
REF = (1.40, 20.0)
OBJ = ("n_D", "abbe_number")


@pytest.fixture(scope="module")
def pool():
    p = load_default_pool()
    X = np.asarray(p["X"][:N_POOL], dtype=float)
    rng = np.random.default_rng(3)
    Z = (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1.0)
    w1, w2 = rng.standard_normal(X.shape[1]), rng.standard_normal(X.shape[1])
    Y = np.column_stack([1.60 + 0.15 * np.tanh(Z @ w1 / 13), 40 + 15 * np.tanh(Z @ w2 / 13)])
    return list(p["psmiles"][:N_POOL]), X, Y


def _cfg(strategy: str, q: int = 3, **kw) -> ProposalConfig:
    return ProposalConfig(objectives=OBJ, reference_point=REF, q=q, strategy=strategy,
                          n_restarts=0, n_mc=16, **kw)


@pytest.mark.parametrize("strategy", [Strategy.EHVI.value, Strategy.BELIEVER.value])
def test_flagged_and_unsimulable_candidates_are_never_picked(pool, strategy):
    ps, X, Y = pool
    obs, excl = Observations(X[:N_INIT], Y[:N_INIT]), Pending(exclude=frozenset(ps[:N_INIT]))
    plain = propose(obs, Candidates(X, ps), _cfg(strategy), excl)
    top = list(plain.rows)
    flagged = np.zeros(N_POOL, dtype=bool)
    flagged[top[:2]] = True                      # the two best picks carry a motif flag
    simulable = np.ones(N_POOL, dtype=bool)
    simulable[top[2]] = False                    # the third fails the pre-check
    cands = Candidates(X, ps, flagged=flagged, simulable=simulable)
    off = propose(obs, cands, _cfg(strategy), excl)
    assert list(off.rows) == top and off.screened_out == {}
    on = propose(obs, cands, _cfg(strategy, exclude_flagged=True, exclude_unsimulable=True),
                 excl)
    assert not set(on.rows) & set(top) and len(on.rows) == 3
    assert on.screened_out == {"flagged": 2, "unsimulable": 1}
    assert not on.available[top].any() and on.available.sum() == N_POOL - N_INIT - 3
    # with q as large as the pool, everything else is chosen, the screened rows never
    every = propose(obs, cands, _cfg(strategy, q=N_POOL, exclude_flagged=True,
                                     exclude_unsimulable=True), excl)
    assert len(every.rows) == N_POOL - N_INIT - 3 and not set(every.rows) & set(top)


def test_a_setting_without_its_facts_is_a_clear_error(pool):
    ps, X, Y = pool
    obs = Observations(X[:N_INIT], Y[:N_INIT])
    with pytest.raises(ProposalError, match="exclude_flagged needs Candidates.flagged"):
        propose(obs, Candidates(X, ps), _cfg("ehvi", exclude_flagged=True))
    with pytest.raises(ProposalError, match="cost_aware needs Candidates.cost_s"):
        propose(obs, Candidates(X, ps), _cfg("ehvi", cost_aware=True))
    with pytest.raises(ProposalError, match="shape"):
        propose(obs, Candidates(X, ps, simulable=np.ones(3, bool)),
                _cfg("ehvi", exclude_unsimulable=True))
    with pytest.raises(ProposalError, match="ehvi and believer"):
        propose(obs, Candidates(X, ps, cost_s=np.ones(N_POOL)),
                _cfg(Strategy.RANDOM.value, cost_aware=True))


@pytest.mark.parametrize("strategy", [Strategy.EHVI.value, Strategy.BELIEVER.value])
def test_cost_aware_prefers_the_cheaper_of_two_equal_candidates(pool, strategy):
    """The best row and an exact copy of it (same descriptor, so the same EHVI) under another
    key: by EHVI alone the original comes first (stable order); per CPU hour the copy, which
    costs half as much, does."""
    ps, X, Y = pool
    obs, excl = Observations(X[:N_INIT], Y[:N_INIT]), Pending(exclude=frozenset(ps[:N_INIT]))
    best = int(propose(obs, Candidates(X, ps), _cfg(strategy, q=1), excl).rows[0])
    X2, keys = np.vstack([X, X[best]]), ps + ["copy-of-best"]
    cost = np.full(N_POOL + 1, 3600.0)
    cost[-1] = 1800.0
    by_ehvi = propose(obs, Candidates(X2, keys, cost_s=cost), _cfg(strategy, q=2), excl)
    assert by_ehvi.rows[0] == best
    per_hour = propose(obs, Candidates(X2, keys, cost_s=cost),
                       _cfg(strategy, q=2, cost_aware=True), excl)
    assert per_hour.rows[0] == N_POOL                       # the cheaper copy
    sel = per_hour.selection
    assert sel.extra["cost_h"][0] == pytest.approx(0.5)
    assert sel.extra["ehvi_per_cpu_hour"][0] == pytest.approx(2 * sel.ehvi[0])
    assert sel.ehvi[0] == pytest.approx(by_ehvi.selection.ehvi[0])


def test_cost_aware_trades_ehvi_for_cost():
    """Three candidates: EHVI a > b > c; b is four times cheaper than a.  The ratio ranks
    b, a, c; a row of unknown cost is never chosen."""
    front = np.array([[1.5, 30.0]])
    ref = np.array([1.4, 20.0])
    mu = np.array([[1.62, 42.0], [1.58, 38.0], [1.52, 32.0], [1.70, 50.0]])
    sd = np.full((4, 2), [0.01, 1.0])
    e = ehvi_2d(mu, sd, front, ref)
    assert e[0] > e[1] > e[2] and e[3] > e[0]
    cost_h = np.array([1.0, 0.25, 1.0, np.nan])
    assert e[1] / 0.25 > e[0] > e[2]
    plain = select_batch(mu[:3], sd[:3], front, ref, 3, strategy="ehvi")
    assert list(plain.indices) == [0, 1, 2]
    for strategy in (Strategy.EHVI.value, Strategy.BELIEVER.value):
        sel = select_cost_aware(mu, sd, front, ref, 3, cost_h, strategy=strategy)
        assert list(sel.indices[:2]) == [1, 0] and 3 not in sel.indices
    with pytest.raises(ProposalError, match="known CPU cost"):
        select_cost_aware(mu, sd, front, ref, 1, np.full(4, np.nan))


# --------------------------------------------------------------------------- the campaign
def test_settings_round_trip_through_the_store(tmp_path):
    store = Store(tmp_path / "s.db")
    pool = write_pool_csv(tmp_path / "pool.csv")
    c = store.create_campaign("a", {"pool_source": str(pool), "exclude_flagged": True,
                                    "cost_aware": True, "exclude_unsimulable": False},
                              actor="test")
    cfg = store.campaign_config(c["id"])
    assert (cfg.exclude_flagged, cfg.exclude_unsimulable, cfg.cost_aware) == (True, False, True)
    store.update_config("a", {"cost_aware": False}, actor="test")
    assert store.campaign_config("a").cost_aware is False
    audit = store.audit_log("a")
    assert audit.iloc[0]["details"] == {"cost_aware": {"old": True, "new": False}}
    # bad input: a clear error naming the setting, nothing changed
    with pytest.raises(InvalidConfig, match="exclude_flagged must be true/false"):
        store.update_config("a", {"exclude_flagged": "yes"}, actor="test")
    assert store.campaign_config("a").exclude_flagged is True
    # a config stored before these settings existed loads with the defaults
    old = CampaignConfig().to_dict()
    for k in ("exclude_flagged", "exclude_unsimulable", "cost_aware"):
        old.pop(k)
    with sqlite3.connect(tmp_path / "s.db") as con:
        con.execute("UPDATE campaigns SET config=? WHERE name='a'", (json.dumps(old),))
    cfg = store.campaign_config("a")
    assert (cfg.exclude_flagged, cfg.exclude_unsimulable, cfg.cost_aware) == (False, True, False)


# two polymers outside the shipped pool (so their screening is computed and cached in the store)
SULFONIC = "*CC(*)c1ccc(S(=O)(=O)O)cc1"     # poly(styrenesulfonic acid): flagged
HUGE = "*CC(*)(C)C(=O)OC" + "C" * 37        # QM molecule of 125 atoms > quick's limit of 100


def test_a_campaign_proposal_leaves_out_flagged_and_unsimulable_polymers(tmp_path):
    from core.chem.polymer import canonical_psmiles
    from core.optimize.cost_estimate import screening_version

    from core.optimize.cost_estimate import _shipped_vectors

    pool = write_pool_csv(tmp_path / "pool.csv", POOL + [SULFONIC, HUGE])
    bad = {canonical_psmiles(SULFONIC), canonical_psmiles(HUGE)}
    assert not _shipped_vectors("quick", list(bad))
    store = Store(tmp_path / "c.db")
    create_campaign(store, "c", {"pool_source": str(pool), "preset": "quick",
                                 "batch_size": len(POOL) + 2, "exclude_flagged": True,
                                 "experimental_in_model": True},
                    initial=reference_records(("PMMA", "PS", "PC")), actor="test")
    b = propose_batch(store, "c", actor="test")
    picked = set(store.batch_candidates(b["id"])["psmiles"])
    assert len(picked) == len(POOL) - 2 and not picked & bad  # PMMA, PS observed; PC not in
    assert b["info"]["screened_out"] == {"flagged": 1, "unsimulable": 1}
    # the screening of the CSV pool was cached in the store, by preset and model version
    assert set(store.cached_screening("quick", screening_version(), bad)) == bad
    sc = screen([canonical_psmiles(SULFONIC), canonical_psmiles(HUGE)], "quick", cache=store)
    assert list(sc["flagged"]) == [True, False] and list(sc["simulable"]) == [True, False]
    assert sc["flags"][0] == "free sulfonic acid" and "more than the quick limit of 100" in \
        sc["unsimulable_reason"][1]
    # settings off: both can be proposed again
    store.update_config("c", {"exclude_flagged": False, "exclude_unsimulable": False},
                        actor="test")
    b2 = propose_batch(store, "c", actor="test")
    assert bad <= set(store.batch_candidates(b2["id"])["psmiles"])
    assert b2["info"]["screened_out"] == {}


def test_cost_aware_campaign_records_cost_per_pick(tmp_path):
    pool = write_pool_csv(tmp_path / "pool.csv")
    store = Store(tmp_path / "c.db")
    create_campaign(store, "c", {"pool_source": str(pool), "preset": "quick", "batch_size": 3,
                                 "cost_aware": True, "acquisition_strategy": "ehvi",
                                 "experimental_in_model": True},
                    initial=reference_records(("PMMA", "PS", "PC")), actor="test")
    b = propose_batch(store, "c", actor="test")
    assert b["info"]["cost_aware"] is True and b["n_selected"] == 3
    cands = store.batch_candidates(b["id"]).sort_values("rank")
    costs = screen(list(cands["psmiles"]), "quick")["cost_cpu_min"].to_numpy()
    ratio = cands["ehvi"].to_numpy() / (costs / 60.0)
    assert np.all(np.diff(ratio) <= 1e-12)        # picks in descending EHVI per CPU hour
    assert isinstance(cands, pd.DataFrame)


def test_cli_new_and_config_set_the_screening_settings(tmp_path, capsys):
    from core.campaign.commands import main

    db = str(tmp_path / "cli.db")
    assert main(["--db", db, "new", "c", "--exclude-flagged", "--no-exclude-unsimulable"]) == 0
    cfg = Store(db).campaign_config("c")
    assert (cfg.exclude_flagged, cfg.exclude_unsimulable, cfg.cost_aware) == (True, False, False)
    assert main(["--db", db, "config", "c", "--cost-aware", "--exclude-unsimulable"]) == 0
    shown = json.loads(capsys.readouterr().out.split("\n", 1)[1])  # after the "created" line
    assert (shown["exclude_flagged"], shown["exclude_unsimulable"], shown["cost_aware"]) == \
        (True, True, True)
    assert main(["--db", db, "config", "c"]) == 0           # no flag: shows, changes nothing
    assert json.loads(capsys.readouterr().out)["cost_aware"] is True
    assert main(["--db", db, "config", "absent", "--cost-aware"]) == 2
    assert "no campaign 'absent'" in capsys.readouterr().err
