"""Linear calibration: hand-checked least squares and leave-one-out errors."""
from __future__ import annotations

import numpy as np
import pytest

from core.chem.calibration import CalibrationError, fit_linear


def test_exact_line_is_recovered_with_zero_error():
    c = fit_linear("n_D", [1.40, 1.50, 1.60], [1.45, 1.56, 1.67])  # y = 1.1 x - 0.09
    assert c.slope == pytest.approx(1.1)
    assert c.intercept == pytest.approx(-0.09)
    assert c.rmse_fit == pytest.approx(0.0, abs=1e-12)
    assert c.rmse_loo == pytest.approx(0.0, abs=1e-12)
    assert c.raw_rmse == pytest.approx(np.sqrt((0.05**2 + 0.06**2 + 0.07**2) / 3))
    assert c.apply(1.55) == pytest.approx(1.615)


def test_leave_one_out_matches_explicit_refits():
    x = np.array([1.38, 1.42, 1.47, 1.55, 1.61, 1.70])
    y = np.array([1.47, 1.49, 1.58, 1.59, 1.65, 1.75])
    c = fit_linear("n_D", x, y)
    loo = []
    for i in range(len(x)):
        m = np.arange(len(x)) != i
        b, a = np.polyfit(x[m], y[m], 1)
        loo.append(y[i] - (a + b * x[i]))
    assert c.rmse_loo == pytest.approx(np.sqrt(np.mean(np.square(loo))))
    assert c.mape_loo == pytest.approx(np.mean(np.abs(loo) / y))
    b, a = np.polyfit(x, y, 1)
    assert (c.slope, c.intercept) == pytest.approx((b, a))


@pytest.mark.parametrize("x,y", [([1.5, 1.6], [1.5, 1.6]), ([1.5, 1.5, 1.5], [1.4, 1.5, 1.6]),
                                 ([1.5, float("nan"), 1.6], [1.5, 1.6, 1.7])])
def test_unusable_input_is_refused(x, y):
    with pytest.raises(CalibrationError):
        fit_linear("n_D", x, y)


def test_calibrated_values_only_for_the_calibrated_preset(tmp_path):
    import json

    from core.chem.calibration import calibrated_values, load_calibration

    n = fit_linear("n_D", [1.40, 1.50, 1.60], [1.45, 1.56, 1.67], label="test line")
    nu = fit_linear("abbe_number", [30.0, 50.0, 70.0], [28.0, 44.0, 60.0], label="test line")
    f = tmp_path / "cal.json"
    f.write_text(json.dumps({"preset": "quick", "lines": {"n_D": n.to_dict(),
                                                           "abbe_number": nu.to_dict()}}))
    cal = load_calibration(f)
    got = calibrated_values({"preset": "quick", "n_D": 1.55, "abbe_number": 40.0}, cal)
    assert got["n_D"] == pytest.approx(1.615) and got["abbe_number"] == pytest.approx(36.0)
    assert got["label"] == "test line"
    assert calibrated_values({"preset": "smoke", "n_D": 1.55, "abbe_number": 40.0}, cal) is None
    assert calibrated_values({"preset": "quick", "n_D": 1.55}, cal) is None
    assert load_calibration(tmp_path / "absent.json") == {}


def test_a_line_worse_than_raw_out_of_sample_is_not_shipped():
    from core.chem.calibration import worth_shipping

    good = fit_linear("n_D", [1.40, 1.45, 1.50, 1.60], [1.47, 1.515, 1.58, 1.67])  # biased raw
    assert worth_shipping(good)
    # raw already right, noise only: a fitted line does worse out of sample
    noisy = fit_linear("abbe_number", [30.0, 40.0, 50.0, 60.0], [31.0, 39.0, 51.0, 59.0])
    assert noisy.raw_rmse == pytest.approx(1.0)
    # hand LOO residuals 0.4/0.3, 1.2/0.7, 1.2/0.7, 0.4/0.3 -> RMSE 1.5357 > 1.0
    assert noisy.rmse_loo == pytest.approx(1.5357, abs=1e-4)
    assert not worth_shipping(noisy)
