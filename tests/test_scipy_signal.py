"""diffprog.scipy.signal.convolve/correlate against scipy.signal: every mode and method on 1-D,
2-D and 3-D arrays of various shapes (second input larger, 'valid' with swapped inputs, even
and odd kernels), traced in either or both inputs and under jit, to 1e-12; derivatives in both
inputs against central differences in both modes to order 2 (float64 and float32) and against
the closed form (the gradient of a correlation is a correlation); SciPy's errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal as ss

import diffprog as dp
import diffprog.numpy as dnp
from diffprog.scipy import signal as ds
from diffprog.testing import check_grads

RNG = np.random.default_rng(7)

SHAPES = [((7,), (3,)), ((4,), (6,)), ((5,), (5,)), ((1,), (4,)), ((6, 5), (3, 2)),
          ((3, 4), (4, 6)), ((5, 4), (2, 4)), ((4, 3, 5), (2, 3, 2))]
VALID_OK = [(s1, s2) for s1, s2 in SHAPES
            if all(a >= b for a, b in zip(s1, s2)) or all(b >= a for a, b in zip(s1, s2))]


def _pair(s1, s2, dtype=np.float64):
    return RNG.standard_normal(s1).astype(dtype), RNG.standard_normal(s2).astype(dtype)


def _traced_values(f, x, y):
    """f traced in x, in y, in both (inside vjp's trace), and under jit."""
    return [dp.vjp(lambda x: f(x, y), x)[0], dp.vjp(lambda y: f(x, y), y)[0],
            dp.vjp(f, x, y)[0], dp.jit(f)(x, y)]


CASES = [(mode, shapes) for mode in ("full", "same", "valid")
         for shapes in (VALID_OK if mode == "valid" else SHAPES)]  # the rest: test_errors


@pytest.mark.parametrize("name", ["convolve", "correlate"])
@pytest.mark.parametrize(("mode", "shapes"), CASES, ids=str)
def test_values(name, mode, shapes):
    x, y = _pair(*shapes)
    ours = getattr(ds, name)
    for method in ("direct", "fft", "auto"):
        want = getattr(ss, name)(x, y, mode=mode, method=method)
        f = lambda a, b, method=method: ours(a, b, mode=mode, method=method)
        for got in _traced_values(f, x, y):
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["convolve", "correlate"])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_grads(name, mode):
    f = lambda a, b: getattr(ds, name)(a, b, mode=mode)
    for s1, s2 in [((6,), (3,)), ((3, 4), (2, 2)), ((2, 3), (3, 4))]:
        check_grads(f, _pair(s1, s2), order=2)
    check_grads(f, _pair((4, 5), (2, 3), np.float32), order=2, atol=1e-2, rtol=1e-2)
    x, y = _pair((3, 4), (2, 2), np.float32)
    assert dp.vjp(f, x, y)[0].dtype == np.float32


def test_gradient_closed_form():
    # d/dx sum(w * convolve(x, k, 'valid')) = correlate(w, k, 'full') (in SciPy's conventions)
    x, k = _pair((9, 7), (3, 2))
    w = RNG.standard_normal((7, 6))
    g = dp.grad(lambda x: dnp.sum(w * ds.convolve(x, k, mode="valid")))(x)
    np.testing.assert_allclose(g, ss.correlate(w, k, mode="full"), rtol=1e-12, atol=1e-12)
    gk = dp.jit(dp.grad(lambda k: dnp.sum(w * ds.correlate(x, k, mode="valid"))))(k)
    np.testing.assert_allclose(gk, ss.correlate(x, w, mode="valid"), rtol=1e-12, atol=1e-12)


def test_scalars_and_untraced():
    got = dp.vjp(lambda a: ds.convolve(a, np.array(3.0)), np.array(2.0))[0]
    assert float(got) == 6.0
    x, y = _pair((5,), (2,))
    np.testing.assert_array_equal(ds.convolve(x, y), ss.convolve(x, y))
    np.testing.assert_array_equal(ds.correlate(x, y, "same"), ss.correlate(x, y, "same"))


def test_errors():
    with pytest.raises(ValueError, match="same dimensionality"):
        dp.grad(lambda a: dnp.sum(ds.convolve(a, np.ones((2, 2)))))(np.ones(3))
    with pytest.raises(ValueError, match="at least as large"):
        dp.grad(lambda a: dnp.sum(ds.convolve(a, np.ones((2, 4)), "valid")))(np.ones((3, 3)))
    with pytest.raises(ValueError, match="mode"):
        dp.grad(lambda a: dnp.sum(ds.correlate(a, np.ones(2), "middle")))(np.ones(3))
    with pytest.raises(ValueError, match="method"):
        dp.grad(lambda a: dnp.sum(ds.correlate(a, np.ones(2), method="fast")))(np.ones(3))
