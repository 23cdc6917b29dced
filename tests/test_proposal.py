"""One proposal path: the campaign and the back-test choose with core.optimize.proposal.propose."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.optimize.backtest import Oracle, run_campaign
from core.campaign.cycle import propose_batch
from core.pool import load_default_pool
from core.optimize.proposal import (Candidates, Observations, Pending, ProposalConfig,
                                    ProposalError, propose)
from core.store import Store

N_POOL, N_INIT, Q = 60, 6, 4
REF = (1.40, 20.0)  # n_D, ν_D: below every value of the oracle below


def _oracle_values(X: np.ndarray) -> np.ndarray:
    """A smooth, learnable test oracle over the descriptors: n_D in 1.45–1.75, ν_D in 25–55."""
    rng = np.random.default_rng(7)
    Z = (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1.0)
    w1, w2 = rng.standard_normal(X.shape[1]), rng.standard_normal(X.shape[1])
    n = 1.60 + 0.15 * np.tanh(Z @ w1 / np.sqrt(X.shape[1]))
    v = 40.0 + 15.0 * np.tanh((Z @ w2 - 0.5 * Z @ w1) / np.sqrt(X.shape[1]))
    return np.column_stack([n, v])


@pytest.fixture(scope="module")
def small_pool():
    pool = load_default_pool()
    X = np.asarray(pool["X"][:N_POOL], dtype=float)
    return list(pool["psmiles"][:N_POOL]), X, _oracle_values(X)


@pytest.mark.parametrize("strategy", ["ehvi", "believer"])
def test_backtest_and_campaign_choose_the_same_batch(small_pool, tmp_path, strategy):
    psmiles, X, Y = small_pool
    csv = tmp_path / "pool.csv"
    pd.concat([pd.DataFrame({"id": [f"p{i}" for i in range(N_POOL)], "psmiles": psmiles}),
               pd.DataFrame(X, columns=[f"d{j}" for j in range(X.shape[1])])],
              axis=1).to_csv(csv, index=False)
    store = Store(tmp_path / "c.db")
    store.create_campaign("c", {"pool_source": str(csv), "batch_size": Q,
                                "acquisition_strategy": strategy,
                                "reference_point": list(REF)}, actor="test")
    for i in range(N_INIT):
        store.add_observation("c", psmiles[i], {"n_D": Y[i, 0], "abbe_number": Y[i, 1]},
                              source="test")
    batch = propose_batch(store, "c", seed=0)
    campaign_pick = list(store.batch_candidates(batch["id"]).sort_values("rank")["psmiles"])

    orc = Oracle(("n_D", "abbe_number"), X[N_INIT:], Y[N_INIT:], psmiles[N_INIT:],
                 X_init=X[:N_INIT], Y_init=Y[:N_INIT], keys_init=psmiles[:N_INIT])
    m, s = Y[:N_INIT].mean(0), Y[:N_INIT].std(0)
    run = run_campaign(orc, strategy=strategy, cycles=1, batch=Q, seed=0,
                       acq_ref=tuple((np.asarray(REF) - m) / s), log=lambda _msg: None)
    assert len(campaign_pick) == Q
    assert run["selected"][0] == campaign_pick


def test_propose_excludes_keys_and_fantasises_pending(small_pool):
    psmiles, X, Y = small_pool
    cfg = ProposalConfig(objectives=("n_D", "abbe_number"), reference_point=REF, q=3,
                         strategy="ehvi")
    obs = Observations(X[:N_INIT], Y[:N_INIT])
    plain = propose(obs, Candidates(X, psmiles), cfg, Pending(exclude=frozenset(psmiles[:N_INIT])))
    chosen = [psmiles[i] for i in plain.rows]
    assert len(chosen) == 3 and not set(chosen) & set(psmiles[:N_INIT])
    # excluding the first choice moves the others up; a pending copy of it joins the front
    again = propose(obs, Candidates(X, psmiles), cfg,
                    Pending(X=X[plain.rows[:1]], exclude=frozenset(psmiles[:N_INIT] + chosen[:1])))
    assert chosen[0] not in [psmiles[i] for i in again.rows]
    assert len(again.front_with_fantasies) == len(plain.front) + 1
    assert np.isnan(plain.mean).sum() == 0 and plain.available.sum() == N_POOL - N_INIT
    with pytest.raises(ProposalError, match="at least 2"):
        propose(Observations(X[:1], Y[:1]), Candidates(X, psmiles), cfg)
