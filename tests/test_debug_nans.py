"""NaN debugging: the first primitive that makes a NaN, forward or backward, and the fix."""

from __future__ import annotations

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp


def masked_sqrt(x):
    return dnp.sum(dnp.where(x > 0, dnp.sqrt(x), 0.0))


def safe_masked_sqrt(x):
    # the where-trick: the unsafe branch sees a safe input where it is masked out
    safe = dnp.where(x > 0, x, 1.0)
    return dnp.sum(dnp.where(x > 0, dnp.sqrt(safe), 0.0))


X = np.array([4.0, 0.0])


def test_masked_branch_gives_nan_gradient_without_debugging():
    with np.errstate(all="ignore"):
        g = dp.grad(masked_sqrt)(X)
    assert g[0] == 0.25 and np.isnan(g[1])  # 0 * sqrt'(0) = 0 * inf
    assert not dp.config.debug_nans


def test_debug_nans_names_the_primitive_and_line_in_the_backward_pass():
    with dp.debug_nans(), np.errstate(all="ignore"):
        with pytest.raises(dp.NanError, match=r"primitive 'sqrt' produced NaN from inputs "
                                              r"without NaN, in the backward pass, at "
                                              r".*test_debug_nans\.py:13"):
            dp.grad(masked_sqrt)(X)
    assert not dp.config.debug_nans  # the context manager restores the setting


def test_debug_nans_forward_pass_and_the_fix():
    dp.config.debug_nans = True
    try:
        with np.errstate(all="ignore"), pytest.raises(
                dp.NanError, match=r"'log' produced NaN.*forward pass.*where\(x > 0"):
            dp.grad(lambda x: dnp.sum(dnp.log(x)))(-X)
        g = dp.grad(safe_masked_sqrt)(X)  # no NaN anywhere: no error
        np.testing.assert_array_equal(g, [0.25, 0.0])
        # a NaN already in the input is not blamed on the primitive
        np.testing.assert_array_equal(dp.grad(lambda x: dnp.sum(x * 2.0))(np.array([np.nan])),
                                      [2.0])
    finally:
        dp.config.debug_nans = False
    np.testing.assert_array_equal(dp.grad(safe_masked_sqrt)(X), [0.25, 0.0])


def test_debug_nans_in_forward_mode_tangents():
    with dp.debug_nans(), np.errstate(all="ignore"):
        with pytest.raises(dp.NanError, match=r"'sqrt'.*forward-mode tangent"):
            dp.jvp(lambda x: dnp.sqrt(x) * 0.0, (0.0,), (0.0,))
