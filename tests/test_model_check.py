"""Model check: predicted vs simulated values of the proposed batches (hand-checked numbers)."""
import json

import numpy as np
import pandas as pd

from core.optimize.model_check import model_check, prediction_pairs


def _cands():
    return pd.DataFrame([
        {"cycle": 1, "key": "a", "pred_mean": json.dumps({"n_D": 1.60, "abbe_number": 30.0}),
         "pred_std": json.dumps({"n_D": 0.02, "abbe_number": 5.0})},
        {"cycle": 1, "key": "b", "pred_mean": {"n_D": 1.50, "abbe_number": 50.0},
         "pred_std": {"n_D": 0.01, "abbe_number": 2.0}},
        {"cycle": 2, "key": "c", "pred_mean": {"n_D": 1.70, "abbe_number": 20.0},
         "pred_std": {"n_D": 0.05, "abbe_number": 4.0}},
        {"cycle": 2, "key": "hand", "pred_mean": None, "pred_std": None},   # added by hand
        {"cycle": 2, "key": "pending", "pred_mean": {"n_D": 1.5}, "pred_std": {"n_D": 0.1}},
    ])


def _obs():
    return pd.DataFrame([
        {"key": "a", "n_D": 1.61, "abbe_number": 41.0},    # z = +0.5, +2.2
        {"key": "b", "n_D": 1.47, "abbe_number": 49.0},    # z = -3.0, -0.5
        {"key": "c", "n_D": 1.72, "abbe_number": 22.0},    # z = +0.4; ν_D mean of two 24.0: z = +1.0
        {"key": "c", "n_D": 1.72, "abbe_number": 18.0 + 8.0},
        {"key": "hand", "n_D": 1.55, "abbe_number": 35.0},
    ])


def test_pairs_hold_errors_and_z_of_evaluated_predicted_candidates():
    p = prediction_pairs(_cands(), _obs(), ["n_D", "abbe_number"])
    assert sorted(set(p["key"])) == ["a", "b", "c"]          # no prediction / not evaluated
    row = p[(p.key == "a") & (p.objective == "abbe_number")].iloc[0]
    assert np.isclose(row["error"], 11.0) and np.isclose(row["z"], 2.2)
    row = p[(p.key == "c") & (p.objective == "abbe_number")].iloc[0]
    assert np.isclose(row["value"], 24.0) and np.isclose(row["z"], 1.0)


def test_model_check_per_cycle_and_overall():
    t = model_check(prediction_pairs(_cands(), _obs(), ["n_D", "abbe_number"]))
    c1 = t[(t.cycle == "1") & (t.objective == "n_D")].iloc[0]
    assert c1["n"] == 2
    assert np.isclose(c1["bias"], (0.01 - 0.03) / 2)
    assert np.isclose(c1["mae"], 0.02)
    assert np.isclose(c1["rmse"], np.sqrt((0.01 ** 2 + 0.03 ** 2) / 2))
    assert np.isclose(c1["within_1sd"], 0.5) and np.isclose(c1["within_2sd"], 0.5)
    allv = t[(t.cycle == "all") & (t.objective == "abbe_number")].iloc[0]
    # |z| = 2.2, 0.5, 1.0 -> within 1σ: 2/3, within 2σ: 2/3
    assert allv["n"] == 3
    assert np.isclose(allv["within_1sd"], 2 / 3) and np.isclose(allv["within_2sd"], 2 / 3)


def test_empty_inputs_give_empty_tables():
    assert model_check(prediction_pairs(pd.DataFrame(), _obs(), ["n_D"])).empty
    assert prediction_pairs(_cands(), pd.DataFrame(), ["n_D"]).empty


def test_store_flat_prediction_columns_are_read_too():
    flat = pd.DataFrame([{"cycle": 1, "key": "a", "pred_mean_n_D": 1.60, "pred_std_n_D": 0.02,
                          "pred_mean_abbe_number": None, "pred_std_abbe_number": None}])
    p = prediction_pairs(flat, _obs(), ["n_D", "abbe_number"])
    assert list(p["objective"]) == ["n_D"] and np.isclose(p["z"].iloc[0], 0.5)
