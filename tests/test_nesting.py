"""Nested transforms are never confused: d/dx[x * d/dy(x + y)] = 1 for every pairing."""

from __future__ import annotations

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp


def inner_grad(f):
    return dp.grad(f)


def inner_jvp(f):
    return lambda y: dp.jvp(f, (y,), (1.0,))[1]


def outer_grad(f, x):
    return dp.grad(f)(x)


def outer_jvp(f, x):
    return dp.jvp(f, (x,), (1.0,))[1]


def outer_vjp(f, x):
    out, vjp_fn = dp.vjp(f, x)
    return vjp_fn(1.0)[0]


INNER = {"grad": inner_grad, "jvp": inner_jvp}
OUTER = {"grad": outer_grad, "jvp": outer_jvp, "vjp": outer_vjp}


@pytest.mark.parametrize("inner", INNER)
@pytest.mark.parametrize("outer", OUTER)
def test_perturbation_confusion(outer, inner):
    def f(x):
        # d/dy (x + y) = 1 whatever x is; confusing the two perturbations would give 2
        return x * INNER[inner](lambda y: x + y)(1.0)
    assert OUTER[outer](f, 1.0) == 1.0


@pytest.mark.parametrize("inner", INNER)
@pytest.mark.parametrize("outer", OUTER)
def test_inner_function_closes_over_outer_value(outer, inner):
    # d/dx [ d/dy (x * y^2) at y=2 ] = d/dx [4x] = 4; then with x inside a sin: 4 cos(x)
    def f(x):
        return INNER[inner](lambda y: dnp.sin(x) * y * y)(2.0)
    np.testing.assert_allclose(OUTER[outer](f, 0.5), 4 * np.cos(0.5))


def test_three_levels():
    # d/dx d/dy d/dz (x*y*z) = 1 with every level a different transform
    f = lambda x: dp.jvp(lambda y: dp.grad(lambda z: x * y * z)(1.0), (1.0,), (1.0,))[1]
    assert dp.grad(f)(2.0) == 1.0
    g = lambda x: dp.grad(lambda y: dp.jvp(lambda z: x * x * y * z, (1.0,), (1.0,))[1])(3.0)
    assert dp.jvp(g, (2.0,), (1.0,))[1] == 4.0


def test_grad_of_vjp_fn_from_outer_scope():
    # a vjp_fn made at top level and then called under another transform
    out, vjp_fn = dp.vjp(lambda x: dnp.sin(x) * 2.0, np.array([0.3]))
    g = dp.grad(lambda c: dnp.sum(vjp_fn(c)[0]))(np.array([1.5]))
    np.testing.assert_allclose(g, 2 * np.cos([0.3]))
