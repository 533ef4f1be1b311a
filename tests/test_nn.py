"""diffprog.nn: values against closed forms, derivatives with check_grads in both modes to order
2 over shapes and dtypes, and numerical stability at ±1000 (no overflow, no nan, the right
gradients)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp
from diffprog import nn

RNG = np.random.default_rng(2)
DTYPES = [np.float64, np.float32]


def real(shape, dtype):
    return (2.0 * RNG.standard_normal(shape)).astype(dtype)


def away_from_zero(shape, dtype):
    v = RNG.uniform(0.3, 2.0, shape) * RNG.choice([-1.0, 1.0], shape)
    return np.asarray(v).astype(dtype)


def tol_for(dtype):
    return {} if dtype == np.float64 else {"atol": 3e-3, "rtol": 3e-3}


def probabilities(shape, dtype):
    p = RNG.uniform(0.1, 1.0, shape)
    return (p / p.sum(axis=-1, keepdims=True)).astype(dtype)


# name, function, domain of each argument
ELEMENTWISE = [
    ("relu", nn.relu, away_from_zero), ("sigmoid", nn.sigmoid, real),
    ("log_sigmoid", nn.log_sigmoid, real), ("softplus", nn.softplus, real),
    ("gelu", nn.gelu, real), ("gelu_tanh", lambda x: nn.gelu(x, approximate=True), real),
    ("silu", nn.silu, real), ("erf", nn.erf, real), ("erfc", nn.erfc, real),
]
AXES = [
    ("softmax", nn.softmax), ("log_softmax", nn.log_softmax),
    ("softmax_axis0", lambda x: nn.softmax(x, axis=0)),
    ("log_softmax_axis0", lambda x: nn.log_softmax(x, axis=0)),
    ("logsumexp", nn.logsumexp), ("logsumexp_axis", lambda x: nn.logsumexp(x, axis=-1)),
]
LABELS = np.array([2, 0])
LOSSES = [
    ("cross_entropy_int", lambda z: nn.cross_entropy(z, LABELS), (real,)),
    ("cross_entropy_probs", lambda z, p: nn.cross_entropy(z, p), (real, probabilities)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (0,)], ids=str)
@pytest.mark.parametrize("name,fn,domain", ELEMENTWISE, ids=[e[0] for e in ELEMENTWISE])
def test_elementwise(name, fn, domain, shape, dtype):
    dp.check_grads(fn, (domain(shape, dtype),), order=2, **tol_for(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4,), (2, 3)], ids=str)
@pytest.mark.parametrize("name,fn", AXES, ids=[a[0] for a in AXES])
def test_along_axes(name, fn, shape, dtype):
    x = real(shape, dtype)
    dp.check_grads(lambda x: dnp.sin(fn(x)), (x,), order=2, **tol_for(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,fn,domains", LOSSES, ids=[c[0] for c in LOSSES])
def test_losses(name, fn, domains, dtype):
    args = tuple(d((2, 3), dtype) for d in domains)
    dp.check_grads(fn, args, order=2, **tol_for(dtype))


# -- values ------------------------------------------------------------------------------------

def test_values_against_closed_forms():
    x = np.linspace(-6.0, 6.0, 25)
    sig = 1.0 / (1.0 + np.exp(-x))
    np.testing.assert_allclose(nn.sigmoid(x), sig, rtol=1e-15)
    np.testing.assert_allclose(nn.softplus(x), np.log1p(np.exp(x)), rtol=1e-14)
    np.testing.assert_allclose(nn.log_sigmoid(x), np.log(sig), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(nn.silu(x), x * sig, rtol=1e-15)
    phi = np.array([0.5 * (1.0 + math.erf(v / math.sqrt(2.0))) for v in x])
    np.testing.assert_allclose(nn.gelu(x), x * phi, rtol=1e-14, atol=1e-15)
    tanh_form = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    np.testing.assert_allclose(nn.gelu(x, approximate=True), tanh_form, rtol=1e-15)
    np.testing.assert_array_equal(nn.relu(x), np.maximum(x, 0.0))
    z = x.reshape(5, 5)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(nn.softmax(z), e / e.sum(-1, keepdims=True), rtol=1e-14)
    np.testing.assert_allclose(nn.softmax(z, axis=0).sum(axis=0), np.ones(5), rtol=1e-15)
    np.testing.assert_allclose(nn.log_softmax(z), np.log(e / e.sum(-1, keepdims=True)),
                               rtol=1e-14)


def test_dtypes_are_kept():
    x = np.linspace(-3, 3, 5).astype(np.float32)
    for fn in (nn.relu, nn.sigmoid, nn.softplus, nn.gelu, nn.silu, nn.softmax, nn.erf, nn.erfc,
               nn.log_softmax, lambda x: nn.gelu(x, approximate=True)):
        assert fn(x).dtype == np.float32
        out, t = dp.jvp(fn, (x,), (np.ones(5, np.float32),))
        assert out.dtype == np.float32 and t.dtype == np.float32


def test_erf_and_erfc_are_accurate_to_a_few_ulp():
    x = np.concatenate([np.linspace(-8.0, 8.0, 20001), np.logspace(-300, 1.4, 2000),
                        -np.logspace(-300, 1.4, 2000), [0.46875, 4.0, -4.0, 27.0]])
    want = np.array([math.erf(v) for v in x])
    got = nn.erf(x)
    assert np.max(np.abs(got - want)) <= 1e-15
    nonzero = want != 0
    assert np.all(got[~nonzero] == 0.0)
    assert np.max(np.abs(got - want)[nonzero] / np.abs(want[nonzero])) <= 1e-15
    want = np.array([math.erfc(v) for v in x])
    got = nn.erfc(x)
    assert np.max(np.abs(got - want) / want) <= 2e-15


def test_erf_special_values():
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 40.0, -40.0, 1e308])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        e, c = nn.erf(x), nn.erfc(x)
    np.testing.assert_array_equal(e, [0.0, -0.0, 1.0, -1.0, np.nan, 1.0, -1.0, 1.0])
    assert np.signbit(e[1])
    np.testing.assert_array_equal(c, [1.0, 1.0, 0.0, 2.0, np.nan, 0.0, 2.0, 0.0])
    assert type(nn.erf(0.5)) is np.float64 and nn.erf(np.float32(0.5)).dtype == np.float32
    assert nn.erf(np.array([1, 2])).dtype == np.float64
    with pytest.raises(TypeError, match="real"):
        nn.erf(np.array([1j]))


def test_erf_derivatives_closed_form():
    x = np.linspace(-3, 3, 7)
    np.testing.assert_allclose(dp.grad(lambda x: nn.erf(x).sum())(x),
                               2 / np.sqrt(np.pi) * np.exp(-x ** 2), rtol=1e-15)
    np.testing.assert_allclose(dp.grad(lambda x: nn.erfc(x).sum())(x),
                               -2 / np.sqrt(np.pi) * np.exp(-x ** 2), rtol=1e-15)


def test_relu_at_zero_has_derivative_zero():
    for x in (0.0, -0.0):
        assert dp.grad(nn.relu)(x) == 0.0
        assert dp.jvp(nn.relu, (x,), (1.0,))[1] == 0.0
    x = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(dp.grad(lambda x: nn.relu(x).sum())(x), [0.0, 0.0, 1.0])
    # and second derivative 0 everywhere
    np.testing.assert_array_equal(dp.jvp(dp.grad(lambda x: nn.relu(x).sum()), (x,),
                                         (np.ones(3),))[1], np.zeros(3))
    assert np.isnan(nn.relu(np.nan))


def test_one_hot():
    np.testing.assert_array_equal(nn.one_hot(np.array([[1], [0]]), 2),
                                  [[[0.0, 1.0]], [[1.0, 0.0]]])
    assert nn.one_hot([0, 2], 3, dtype=np.float32).dtype == np.float32
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        nn.one_hot(np.array([3]), 3)
    with pytest.raises(TypeError, match="integers"):
        nn.one_hot(np.array([0.5]), 3)


def test_cross_entropy_values_and_label_forms():
    logits = np.array([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]])
    labels = np.array([0, 2])
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    want = -(logp[0, 0] + logp[1, 2]) / 2
    assert nn.cross_entropy(logits, labels) == pytest.approx(want, rel=1e-15)
    assert nn.cross_entropy(logits, nn.one_hot(labels, 3)) == pytest.approx(want, rel=1e-15)
    # gradient: (softmax - one_hot) / batch
    g = dp.grad(nn.cross_entropy)(logits, labels)
    np.testing.assert_allclose(g, (np.exp(logp) - nn.one_hot(labels, 3)) / 2, rtol=1e-14)
    # a single example (no batch axis) and extra batch axes
    assert nn.cross_entropy(logits[0], 0) == pytest.approx(-logp[0, 0], rel=1e-15)
    assert nn.cross_entropy(logits[None], labels[None]) == pytest.approx(want, rel=1e-15)
    with pytest.raises(ValueError, match="shape"):
        nn.cross_entropy(logits, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="shape"):
        nn.cross_entropy(logits, np.ones((2, 2)) / 2)


def test_cross_entropy_soft_targets_get_a_derivative():
    logits = np.array([[2.0, 0.5, -1.0]])
    p = np.array([[0.2, 0.3, 0.5]])
    g_p = dp.grad(nn.cross_entropy, argnums=1)(logits, p)
    logp = logits - np.log(np.exp(logits).sum())
    np.testing.assert_allclose(g_p, -logp, rtol=1e-14)


# -- numerical stability at ±1000 --------------------------------------------------------------

EXTREMES = np.array([-1000.0, -50.0, 0.5, 50.0, 1000.0])
SIG = np.array([0.0, 1.0 / (1.0 + math.exp(50.0)), 1.0 / (1.0 + math.exp(-0.5)),
                1.0 / (1.0 + math.exp(-50.0)), 1.0])
# name, function, value at EXTREMES, derivative at EXTREMES
STABLE = [
    ("sigmoid", nn.sigmoid, SIG, SIG * (1.0 - SIG)),
    ("softplus", nn.softplus, np.array([0.0, math.log1p(math.exp(-50.0)),
                                        math.log1p(math.exp(0.5)), 50.0, 1000.0]), SIG),
    ("log_sigmoid", nn.log_sigmoid, np.array([-1000.0, -50.0, -math.log1p(math.exp(-0.5)),
                                              -math.log1p(math.exp(-50.0)), 0.0]),
     np.array([1.0, 1.0, 1.0 / (1.0 + math.exp(0.5)), 1.0 / (1.0 + math.exp(50.0)), 0.0])),
    ("silu", nn.silu, EXTREMES * SIG, SIG + EXTREMES * SIG * (1.0 - SIG)),
    ("relu", nn.relu, np.maximum(EXTREMES, 0.0), (EXTREMES > 0).astype(float)),
    ("gelu", nn.gelu, np.array([0.0, -50.0 * 0.5 * math.erfc(50.0 / math.sqrt(2)),
                                0.5 * 0.5 * math.erfc(-0.5 / math.sqrt(2)), 50.0, 1000.0]),
     np.array([0.0, 0.0, 0.5 * math.erfc(-0.5 / math.sqrt(2))
               + 0.5 * math.exp(-0.125) / math.sqrt(2 * math.pi), 1.0, 1.0])),
    ("gelu_tanh", lambda x: nn.gelu(x, approximate=True), np.array([0.0, 0.0, None, 50.0, 1000.0]),
     np.array([0.0, 0.0, None, 1.0, 1.0])),
    ("erf", nn.erf, np.array([-1.0, -1.0, math.erf(0.5), 1.0, 1.0]),
     np.array([0.0, 0.0, 2 / math.sqrt(math.pi) * math.exp(-0.25), 0.0, 0.0])),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,fn,value,derivative", STABLE, ids=[s[0] for s in STABLE])
def test_stable_at_extremes(name, fn, value, derivative, dtype):
    x = EXTREMES.astype(dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out = fn(x)
        g = dp.grad(lambda x: dnp.sum(fn(x)))(x)
        _, t = dp.jvp(fn, (x,), (np.ones(5, dtype),))
        second = dp.jvp(dp.grad(lambda x: dnp.sum(fn(x))), (x,), (np.ones(5, dtype),))[1]
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(g)) and np.all(np.isfinite(second))
    np.testing.assert_allclose(g, t, rtol=1e-15 if dtype == np.float64 else 1e-7)
    known = np.array([v is not None for v in value])
    rtol = 1e-14 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(out[known], value[known].astype(float), rtol=rtol, atol=1e-300)
    np.testing.assert_allclose(g[known], derivative[known].astype(float), rtol=rtol,
                               atol=1e-300)
    # at the far ends the second derivative is 0 (up to rounding)
    assert abs(second[0]) < 1e-30 and abs(second[-1]) < 1e-30


@pytest.mark.parametrize("name,fn", [(s[0], s[1]) for s in STABLE], ids=[s[0] for s in STABLE])
def test_check_grads_at_extremes(name, fn):
    dp.check_grads(fn, (np.array([-1000.0, 1000.0]),), order=2)


def test_softmax_family_at_extremes():
    z = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -1000.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        np.testing.assert_array_equal(nn.softmax(z), [[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])
        np.testing.assert_allclose(nn.log_softmax(z),
                                   [[0.0, -2000.0, -1000.0], [-math.log(3)] * 3], rtol=1e-15)
        np.testing.assert_allclose(nn.logsumexp(z, axis=-1), [1000.0, -1000.0 + math.log(3)],
                                   rtol=1e-15)
        loss = nn.cross_entropy(z, np.array([1, 0]))
        assert loss == pytest.approx((2000.0 + math.log(3)) / 2, rel=1e-15)
        g = dp.grad(nn.cross_entropy)(z, np.array([1, 0]))
        np.testing.assert_allclose(g, [[0.5, -0.5, 0.0], [-1 / 3, 1 / 6, 1 / 6]], atol=1e-15)
        assert np.all(np.isfinite(dp.grad(lambda z: nn.softmax(z)[0, 0])(z)))
    for fn in (nn.softmax, nn.log_softmax, lambda z: nn.logsumexp(z, axis=-1),
               lambda z: nn.cross_entropy(z, np.array([1, 0]))):
        dp.check_grads(fn, (z,), order=2)


# -- every primitive nn adds, with float64 example arguments (for the registry test) ----------

COVERAGE = [(fn, (real((2, 3), np.float64),)) for _, fn, _ in ELEMENTWISE] + \
    [(fn, (real((2, 3), np.float64),)) for _, fn in AXES] + \
    [(LOSSES[1][1], (real((2, 3), np.float64), probabilities((2, 3), np.float64)))]


def test_coverage_exercises_erf_erfc_logistic():
    seen = set()
    for fn, args in COVERAGE:
        seen.update(dp.make_graph(fn)(*args).primitive_names())
        seen.update(dp.make_graph(dp.grad(lambda *a, fn=fn: dnp.sum(fn(*a))))(*args)
                    .primitive_names())
    assert {"erf", "erfc", "logistic", "logaddexp", "logsumexp"} <= seen
