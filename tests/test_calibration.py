"""Linear calibration: hand-checked least squares and leave-one-out errors."""
from __future__ import annotations

import numpy as np
import pytest

from core.calibration import CalibrationError, fit_linear


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
