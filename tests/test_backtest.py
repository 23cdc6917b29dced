"""Tests for core.optimize.backtest: a tiny replay on a synthetic oracle, JSON format, bad input."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.optimize.backtest import (BacktestInputError, load_oracle, main, quality_metric,
                                    run_campaign)

REPO = Path(__file__).resolve().parents[1]
DESC_NAMES = ([f"mass_{e}" for e in ("H", "C", "N", "O", "F", "P", "S", "Cl", "Br", "I")]
              + [f"{c}_{k}" for c in ("charge", "epsilon", "sigma", "k_bond", "r0", "k_angle",
                                     "theta0", "k_dih") for k in range(20)])


def _synthetic(n: int, d: int, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, size=(n, d))
    a = X[:, 0] + 0.3 * X[:, 1]
    b = 1.0 - X[:, 0] ** 2 + 0.3 * X[:, 2]  # conflicts with a through X[:, 0]
    return X, a, b


@pytest.fixture()
def oracle_dir(tmp_path: Path) -> Path:
    X, a, b = _synthetic(70, 5, 0)
    cols = [f"f{i}" for i in range(5)]
    ids = [f"Q{i}" for i in range(70)]
    a = a.copy()
    a[[10, 17]] = -9999  # two failed simulations in the pool
    pd.DataFrame(X[6:], columns=cols).to_csv(tmp_path / "X_pool.csv", index=False)
    pd.DataFrame({"monomer_ID": ids[6:], "A": a[6:], "B": b[6:]}).to_csv(tmp_path / "y_oracle.csv", index=False)
    init = [0, 1, 2, 4, 5]
    pd.DataFrame(X[init], columns=cols).to_csv(tmp_path / "X.csv", index=False)
    pd.DataFrame({"monomer_ID": [ids[i] for i in init], "A": a[init], "B": b[init]}).to_csv(
        tmp_path / "y.csv", index=False)
    return tmp_path


def test_tiny_backtest_json_and_monotone_hypervolume(oracle_dir, tmp_path):
    out = tmp_path / "bt.json"
    rc = main(["--oracle", str(oracle_dir), "--objectives", "A,B", "--cycles", "3", "--batch", "4",
               "--strategy", "ehvi,believer,random", "--seeds", "2", "--json", str(out),
               "--kernel", "matern", "--restarts", "0"])
    assert rc == 0
    data = json.loads(out.read_text())
    assert len(data["runs"]) == 6
    assert data["metric"]["hv_true"] > 0
    orc = load_oracle(oracle_dir, ["A", "B"])
    init_keys = set(orc.keys_init)
    for run in data["runs"]:
        assert {"seed", "strategy", "hypervolume", "pareto_found"} <= set(run)
        assert run["strategy"] in ("ehvi", "believer", "random") and run["seed"] in (0, 1)
        hv, pf = run["hypervolume"], run["pareto_found"]
        assert len(hv) == len(pf) == 4  # entry 0 = initial set
        assert all(h2 >= h1 - 1e-12 for h1, h2 in zip(hv, hv[1:]))
        assert all(p2 >= p1 for p1, p2 in zip(pf, pf[1:]))
        assert all(0 <= f <= 1 + 1e-12 for f in run["hypervolume_fraction"])
        chosen = [k for batch in run["selected"] for k in batch]
        assert len(chosen) == len(set(chosen)) == 12
        assert not set(chosen) & init_keys
    # the initial entry is the same for every run
    assert len({r["hypervolume"][0] for r in data["runs"]}) == 1


def test_failed_oracle_values_use_a_slot_but_never_train(oracle_dir):
    orc = load_oracle(oracle_dir, ["A", "B"])
    assert np.isnan(orc.Y_pool).sum() == 2
    run = run_campaign(orc, strategy="random", cycles=20, batch=5, seed=0, log=lambda s: None)
    # all 64 pool rows get evaluated (13 cycles), including the two failures
    assert sum(len(b) for b in run["selected"]) == 64
    assert run["n_failed"][-1] == 2
    m = quality_metric(orc)
    assert run["hypervolume_fraction"][-1] == pytest.approx(1.0)
    assert run["pareto_found"][-1] == len(m.true_front_keys)


def test_ehvi_beats_random_on_a_learnable_oracle(oracle_dir):
    orc = load_oracle(oracle_dir, ["A", "B"])
    e = run_campaign(orc, strategy="ehvi", cycles=4, batch=4, seed=0, kernel="matern",
                     n_restarts=0, log=lambda s: None)
    r = np.mean([run_campaign(orc, strategy="random", cycles=4, batch=4, seed=s,
                              log=lambda s: None)["hypervolume"][-1] for s in range(5)])
    assert e["hypervolume"][-1] > r
    # the model check of the picks: every cycle and objective, ≤ 4 picks each (failed oracle
    # values have no pair), fractions in [0, 1]
    mc = [m for m in e["model_check"] if m["cycle"] != "all"]
    assert {(m["cycle"], m["objective"]) for m in mc} == {
        (str(c), o) for c in range(1, 5) for o in ("A", "B")}
    assert all(1 <= m["n"] <= 4 and 0 <= m["within_1sd"] <= m["within_2sd"] <= 1 for m in mc)


def test_believer_front_only_variant_runs(oracle_dir):
    orc = load_oracle(oracle_dir, ["A", "B"])
    a = run_campaign(orc, strategy="believer", cycles=2, batch=4, kernel="matern",
                     believer_sigma_update=False, log=lambda s: None)
    b = run_campaign(orc, strategy="believer", cycles=2, batch=4, kernel="matern", log=lambda s: None)
    for r in (a, b):
        chosen = [k for batch in r["selected"] for k in batch]
        assert len(chosen) == len(set(chosen)) == 8
        assert r["hypervolume"][2] >= r["hypervolume"][0]


def test_csv_oracle_with_descriptor_columns(tmp_path):
    X, a, b = _synthetic(40, 170, 1)
    df = pd.DataFrame(X, columns=DESC_NAMES)
    df.insert(0, "psmiles", [f"*C{'C' * i}*" for i in range(40)])
    df["A"], df["B"] = a, b
    df["initial"] = np.arange(40) < 6
    path = tmp_path / "oracle.csv"
    df.to_csv(path, index=False)
    orc = load_oracle(path, ["A", "B"])
    assert orc.X_pool.shape == (40, 170) and orc.init_mask_pool.sum() == 6
    run = run_campaign(orc, strategy="ehvi", cycles=2, batch=3, kernel="matern", n_restarts=0,
                       log=lambda s: None)
    chosen = [k for batch in run["selected"] for k in batch]
    assert len(chosen) == 6 and not set(chosen) & set(df.psmiles[:6])
    run_r = run_campaign(orc, strategy="random", cycles=1, batch=3, initial="random",
                         n_initial=5, seed=3, log=lambda s: None)
    assert len(run_r["hypervolume"]) == 2


def test_bad_input(oracle_dir, tmp_path):
    with pytest.raises(BacktestInputError):
        load_oracle(oracle_dir, ["A", "missing"])
    with pytest.raises(BacktestInputError):
        load_oracle(oracle_dir, ["A"])
    with pytest.raises(BacktestInputError):
        load_oracle(tmp_path / "nope", ["A", "B"])
    orc = load_oracle(oracle_dir, ["A", "B"])
    with pytest.raises(BacktestInputError):
        run_campaign(orc, strategy="ucb", cycles=1, batch=2)
    with pytest.raises(BacktestInputError):
        run_campaign(orc, strategy="ehvi", cycles=1, batch=0)
    assert main(["--oracle", str(oracle_dir), "--objectives", "A,C", "--cycles", "1"]) == 2


def test_cli_module_entry_point(oracle_dir, tmp_path):
    out = tmp_path / "cli.json"
    res = subprocess.run([sys.executable, "-m", "core.backtest", "--oracle", str(oracle_dir),
                          "--objectives", "A,B", "--cycles", "1", "--batch", "3", "--strategy",
                          "random", "--seeds", "1", "--json", str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "cycle 1/1" in res.stdout
    assert json.loads(out.read_text())["runs"][0]["strategy"] == "random"


@pytest.mark.integration
def test_spacier_benchmark_two_cycles(shared_data, tmp_path):
    orc = load_oracle(shared_data / "spacier_benchmark", ["Cp", "refractive_index"])
    assert orc.X_pool.shape == (1067, 170) and orc.X_init.shape == (10, 170)
    run = run_campaign(orc, strategy="believer", cycles=2, batch=10, log=lambda s: None)
    hv = run["hypervolume"]
    assert len(hv) == 3 and hv[2] >= hv[1] >= hv[0]


@pytest.mark.integration
def test_csv_oracle_with_smiles_computes_descriptors(tmp_path):
    pytest.importorskip("core.chem.descriptors")
    rows = [("*CC*", 1.0, 2.0), ("*CC(*)C", 1.2, 1.5), ("*CC(*)c1ccccc1", 1.6, 0.5),
            ("*CC(*)(C)C(=O)OC", 1.5, 1.0), ("*OCC*", 1.1, 1.8), ("*CC(*)Cl", 1.4, 1.2),
            ("*CC(*)C#N", 1.3, 1.1), ("*C(F)(F)C(F)(F)*", 0.8, 2.5)]
    path = tmp_path / "smiles.csv"
    pd.DataFrame(rows, columns=["psmiles", "A", "B"]).to_csv(path, index=False)
    orc = load_oracle(path, ["A", "B"])
    assert orc.X_pool.shape == (8, 170) and np.all(np.isfinite(orc.X_pool))
    run = run_campaign(orc, strategy="ehvi", cycles=2, batch=2, initial="random", n_initial=3,
                       log=lambda s: None)
    assert len(run["hypervolume"]) == 3 and run["hypervolume"][2] >= run["hypervolume"][0]
