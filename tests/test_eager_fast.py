"""The eager kernels for large elementwise arrays (diffprog/kernels/eager_fast.py, issue 17):
their values against NumPy's on edge and random points in float64 and float32, the threshold
and fallback logic, and end-to-end derivatives with and without them. Speed is measured in
benchmarks/ (W2, benchmarks/eager_threshold.py), never here."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp
from diffprog import core
from diffprog.core import primitives
from diffprog.kernels import eager_fast as ef
from diffprog.prims import elementwise as ew

DTYPES = (np.float64, np.float32)
WITH_FAST = sorted(n for n, p in primitives.items() if p.scalar_fast is not None)
WITH_RULE = sorted(n for n, p in primitives.items() if p.rule_scalar is not None)


@pytest.fixture
def numpy_only():
    """Run the NumPy paths: the provider unregistered, restored afterwards."""
    previous = core._eager_provider, core.EAGER_MIN_SIZE
    core.set_eager_provider(None)
    yield
    core.set_eager_provider(*previous)


def _without_kernels(fn, *args):
    previous = core._eager_provider, core.EAGER_MIN_SIZE
    core.set_eager_provider(None)
    try:
        return fn(*args)
    finally:
        core.set_eager_provider(*previous)


def _loaded(*calls):
    """Run each ``(prim, i, t, out, args)`` once (which queues its kernel) and wait for the
    loader: the kernels these tests compare with NumPy are then ready."""
    with np.errstate(all="ignore"):
        for c in calls:
            ef.run(*c)
    assert ef.wait_ready(600)


def _points(dtype, n: int) -> np.ndarray:
    """Edge values (signed zeros, subnormals, huge, tiny, infinities, nan, the trig range's
    end) then random points over many magnitudes, at least ``n`` elements."""
    finfo = np.finfo(dtype)
    edges = [0.0, -0.0, finfo.smallest_subnormal, -finfo.smallest_subnormal,
             finfo.smallest_normal, finfo.tiny * 3, 1e-30, -1e-8, 0.5, -1.0, 1.0, 2.0,
             np.pi / 2, -np.pi, 10.0, 20.0, -20.0, 88.0, 89.0, -104.0, 700.0, 710.0, -745.0,
             1e5, 1.6e6, -1.6e6, 3e6, 1e30, finfo.max, -finfo.max, np.inf, -np.inf, np.nan]
    rng = np.random.default_rng(0)
    with np.errstate(over="ignore", under="ignore"):
        mags = 10.0 ** rng.uniform(-10, 3, n) * rng.choice([-1.0, 1.0], n)
        x = np.concatenate([np.array(edges, dtype), mags.astype(dtype)])
    return x


def _assert_close(got, want, dtype, what):
    """Within ef.ULP_BOUND ulp of the result's dtype; nan, infinities and the sign of zeros
    exactly as NumPy's."""
    assert got.dtype == want.dtype == dtype, what
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=what)
    fin = np.isfinite(want)
    np.testing.assert_array_equal(got[~fin & ~np.isnan(want)], want[~fin & ~np.isnan(want)],
                                  err_msg=what)
    g, w = got[fin].astype(np.float64), want[fin].astype(np.float64)
    assert np.all(np.isfinite(got[fin])), what
    spacing = np.spacing(np.maximum(np.abs(got[fin]), np.abs(want[fin]))).astype(np.float64)
    ulps = np.abs(g - w) / spacing
    worst = int(np.argmax(ulps)) if ulps.size else 0
    assert ulps.size == 0 or ulps[worst] <= ef.ULP_BOUND, (what, g[worst], w[worst], ulps[worst])
    zeros = want[fin] == 0
    np.testing.assert_array_equal(np.signbit(got[fin][zeros]), np.signbit(want[fin][zeros]),
                                  err_msg=what)


def test_every_form_is_in_the_vocabulary():
    # the expressions compile only from operands, fastmath calls and numbers
    assert WITH_RULE and WITH_FAST
    for name in WITH_RULE:
        prim = primitives[name]
        for form in prim.rule_scalar:
            if form is not None:
                assert ef._names(form, len(prim.rule_scalar)) <= {"t", "out", "x", "y", "z"}
    for bad in ("t * np.cos(x)", "t * erf(x)", "t * w", "t * 'a'", "t * cos(x).real"):
        with pytest.raises(ValueError):
            ef._names(bad, 1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", WITH_FAST)
def test_impl_kernel_against_numpy(name, dtype):
    prim = primitives[name]
    x = _points(dtype, 2 * ef.THRESHOLDS[np.dtype(dtype)])
    if np.dtype(dtype) in ef._spec(prim, -1, 1).numpy_dtypes:
        # NumPy's SIMD loop is faster than the kernel: NumPy runs it, bit for bit
        with np.errstate(all="ignore"):
            assert ef.run(prim, -1, None, None, (x,)) is None
            np.testing.assert_array_equal(prim.impl(x), _without_kernels(prim.impl, x))
        return
    inside = np.abs(x) <= 1.6e6 if prim.scalar_fast_domain else np.ones(x.shape, bool)
    _loaded((prim, -1, None, None, (x[inside],)))
    with np.errstate(all="ignore"):
        want = _without_kernels(prim.impl, x)
        got = ef.run(prim, -1, None, None, (x[inside],))
        if prim.scalar_fast_domain:
            # an element outside the domain: NumPy runs the whole call, bit for bit
            assert ef.run(prim, -1, None, None, (x,)) is None
            np.testing.assert_array_equal(prim.impl(x), want)
        else:
            got_all = prim.impl(x)
            _assert_close(got_all, want, dtype, name)
    assert got is not None
    _assert_close(got, want[inside], dtype, name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", WITH_RULE)
def test_rule_kernel_against_the_numpy_rule(name, dtype):
    prim = primitives[name]
    x = _points(dtype, 2 * ef.THRESHOLDS[np.dtype(dtype)])
    if prim.scalar_fast_domain:
        x = x[np.abs(x) <= 1.6e6]
    rng = np.random.default_rng(1)
    t = (rng.standard_normal(x.size) * 3).astype(dtype)
    t[:4] = [0.0, -0.0, np.inf, np.nan]
    with np.errstate(all="ignore"):
        out = _without_kernels(prim.impl, x)
        if np.dtype(dtype) in ef._spec(prim, 0, 1).numpy_dtypes:
            assert ef.run(prim, 0, t, out, (x,)) is None
            np.testing.assert_array_equal(prim.vjp[0](t, out, x),
                                          _without_kernels(prim.vjp[0], t, out, x))
            return
        _loaded((prim, 0, t, out, (x,)))
        for rules in (prim.vjp, prim.jvp):
            want = _without_kernels(rules[0], t, out, x)
            got = ef.run(prim, 0, t, out, (x,))
            assert got is not None
            _assert_close(got, want, dtype, f"rule of {name}")
            _assert_close(rules[0](t, out, x), want, dtype, f"rule of {name} via the primitive")


def test_threshold_and_fallbacks():
    for dtype in DTYPES:
        n = ef.THRESHOLDS[np.dtype(dtype)]
        assert core.EAGER_MIN_SIZE == ef.MIN_SIZE <= n
        x = np.linspace(-3.0, 3.0, n).astype(dtype)
        _loaded((ew.logistic, -1, None, None, (x,)), (ew.tanh, 0, x, x, (x,)))
        assert ef.run(ew.logistic, -1, None, None, (x[:-1],)) is None  # below the threshold
        assert ef.run(ew.logistic, -1, None, None, (x,)) is not None
        before = dict(ef.stats)
        np.testing.assert_array_equal(ew.logistic.impl(x[:-1]),  # NumPy's own bits
                                      _without_kernels(ew.logistic.impl, x[:-1]))
        assert ef.stats == before
        ew.logistic.impl(x)
        assert ef.stats["kernel"] == before["kernel"] + 1
        # the rule's threshold is the same
        assert ef.run(ew.tanh, 0, x[:-1], x[:-1], (x[:-1],)) is None
        assert ef.run(ew.tanh, 0, x, x, (x,)) is not None
        # 2-d C-contiguous arrays run flat; the shape is kept
        y = np.linspace(-1.0, 1.0, 2 * n).astype(dtype).reshape(2, n)
        assert ef.run(ew.logistic, -1, None, None, (y,)).shape == (2, n)
    x = np.linspace(-3.0, 3.0, 4 * ef.MIN_SIZE)
    declined = [
        (ew.sin, -1, None, None, (x[::2],)),                       # not contiguous
        (ew.sin, -1, None, None, (np.asfortranarray(x.reshape(4, -1)),)),
        (ew.sin, -1, None, None, (np.broadcast_to(x[:1], x.shape),)),  # broadcast
        (ew.sin, -1, None, None, (x.astype(np.float16),)),          # other dtypes
        (ew.sin, -1, None, None, (x.astype(np.complex128),)),
        (ew.sin, -1, None, None, (x.astype(">f8"),)),               # byte-swapped
        (ew.sin, -1, None, None, ((x * 100).astype(np.int64),)),
        (ew.tanh, 0, x.astype(np.float32), x, (x,)),                 # mixed dtypes
        (ew.tanh, 0, 1.0, x, (x,)),                                  # a Python scalar
        (ew.tanh, 0, x[:-1], x, (x,)),                               # mixed shapes
        (ew.add, 0, x, x, (x, x)),                                   # no rule form
        (ew.sin, -1, None, None, (np.full(x.shape, 1e7),)),          # outside the domain
        (ew.exp, -1, None, None, (x,)),                              # NumPy's SIMD is faster
        (ew.sin, -1, None, None, (x.astype(np.float32),)),
        (ew.sin, 0, x.astype(np.float32), None, (x.astype(np.float32),)),
    ]
    for args in declined:
        assert ef.run(*args) is None, args
    # through the primitives these are NumPy's results
    for a in (x[::2], x.astype(np.float16), (x * 100).astype(np.int64), np.full(x.shape, 1e7)):
        np.testing.assert_array_equal(ew.sin.impl(a), np.sin(a))


def test_tracers_and_small_cotangents_take_the_rules_as_written():
    x = np.linspace(-1.0, 1.0, 2 * ef.MIN_SIZE)
    # second order: the rule runs on tracers of the outer trace, through NumPy's composition
    h = dp.grad(lambda x: dnp.sum(dp.grad(lambda y: dnp.sum(dnp.tanh(y)))(x)))(x)
    t = np.tanh(x)
    np.testing.assert_allclose(h, -2.0 * t * (1.0 - t * t), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
def test_grad_and_jvp_of_a_chain_match_the_numpy_path(dtype):
    x = np.linspace(-2.0, 2.0, 3 * ef.THRESHOLDS[np.dtype(dtype)] + 1).astype(dtype)

    def f(x):
        v = dnp.sin(x) * x
        v = dnp.tanh(dnp.cos(v) + 0.5)
        v = dnp.exp(v) * 0.5 + dnp.log1p(dnp.abs(v)) + dnp.sqrt(dnp.abs(v) + 1.0)
        v = dnp.expm1(v * 0.1) + dnp.log(v * v + 1.0) + dnp.arctan(v) + dnp.tan(v * 0.1)
        return dnp.sum(dp.nn.sigmoid(v) * v)

    dp.grad(f)(x)  # NumPy while the kernels load (if they are not loaded yet)
    dp.jvp(lambda x: f(x), (x,), (np.ones_like(x),))
    assert ef.wait_ready(600)
    before = ef.stats["kernel"]
    g = dp.grad(f)(x)
    _, jv = dp.jvp(lambda x: f(x), (x,), (np.ones_like(x),))
    assert ef.stats["kernel"] >= before + 15  # impls and rules above ran as kernels
    g0 = _without_kernels(dp.grad(f), x)
    _, jv0 = _without_kernels(dp.jvp, f, (x,), (np.ones_like(x),))
    tol = 1e-13 if dtype == np.float64 else 2e-5
    assert g.dtype == g0.dtype == dtype
    np.testing.assert_allclose(g, g0, rtol=tol, atol=tol * np.abs(g0).max())
    # a sum of terms of both signs: compared with the size of the terms
    np.testing.assert_allclose(jv, jv0, rtol=0, atol=tol * np.abs(g0).sum())


@pytest.fixture
def fresh_loader(monkeypatch):
    """No kernel loaded or failed yet (as in a new process), the provider restored after."""
    assert ef.wait_ready(600)
    previous = core._eager_provider, core.EAGER_MIN_SIZE
    monkeypatch.setattr(ef, "_kernels", {})
    monkeypatch.setitem(ef._state, "numba", None)
    yield
    ef.wait_ready(600)
    core.set_eager_provider(*previous)


class _Gate:
    """A seam for ef._compile: each load waits for ``open``, then runs the real one (or
    raises ``error``); counts the loads per kernel."""

    def __init__(self, error: BaseException | None = None) -> None:
        import threading
        self.open = threading.Event()
        self.started = threading.Event()
        self.error = error
        self.loads: list[str] = []
        self.real = ef._compile

    def __call__(self, spec, dtype):
        self.loads.append(f"{spec.expr} {dtype}")
        self.started.set()
        assert self.open.wait(600)
        if self.error is not None:
            raise self.error
        return self.real(spec, dtype)


def test_the_first_large_call_runs_numpy_while_its_kernel_loads(fresh_loader, monkeypatch):
    import threading
    gate = _Gate()
    monkeypatch.setattr(ef, "_compile", gate)
    x = np.linspace(-2.0, 2.0, 2 * ef.MIN_SIZE)
    kernels = ef.stats["kernel"]
    # the loader is held at the gate: the call cannot have waited for it
    np.testing.assert_array_equal(ew.sin.impl(x), np.sin(x))  # NumPy's own bits
    assert gate.started.wait(600) and not gate.open.is_set()
    # more calls of the form, from several threads at once, while it loads: NumPy each time,
    # and still one load of each kernel
    results = [None] * 4

    def call(k):
        results[k] = (ew.sin.impl(x), dp.grad(lambda v: dnp.sum(dnp.sin(v)))(x))

    threads = [threading.Thread(target=call, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(600)
    for value, g in results:
        np.testing.assert_array_equal(value, np.sin(x))
        np.testing.assert_array_equal(g, 1.0 * np.cos(x))
    assert ef.stats["kernel"] == kernels
    assert not ef.wait_ready(0.05)  # still held
    gate.open.set()
    assert ef.wait_ready(600)
    # one load per form: sin's, and the one of cos (the rule t * cos(x) with the broadcast
    # cotangent of sum runs as written, cos by its kernel)
    assert sorted(gate.loads) == ["cos(x) float64", "sin(x) float64"]
    # later calls run the kernels, within the ulp bound of NumPy's results
    _assert_close(ew.sin.impl(x), np.sin(x), np.float64, "sin after loading")
    g = dp.grad(lambda v: dnp.sum(dnp.sin(v)))(x)
    _assert_close(g, 1.0 * np.cos(x), np.float64, "grad of sin after loading")
    assert ef.stats["kernel"] == kernels + 3  # sin, then grad: sin and cos
    assert sorted(gate.loads) == ["cos(x) float64", "sin(x) float64"]  # no reload


def test_a_kernel_that_fails_to_load_warns_once_and_numpy_runs(fresh_loader, monkeypatch):
    gate = _Gate(RuntimeError("no compiler today"))
    gate.open.set()
    monkeypatch.setattr(ef, "_compile", gate)
    x = np.linspace(-2.0, 2.0, 2 * ef.MIN_SIZE)
    with pytest.warns(RuntimeWarning, match="could not be compiled") as record:
        assert ef.run(ew.cos, -1, None, None, (x,)) is None
        assert ef.wait_ready(600)
        for _ in range(3):  # remembered: no second load, no second warning
            assert ef.run(ew.cos, -1, None, None, (x,)) is None
            np.testing.assert_array_equal(ew.cos.impl(x), np.cos(x))
        assert ef.wait_ready(600)
    assert len([w for w in record if "could not be compiled" in str(w.message)]) == 1
    assert gate.loads == ["cos(x) float64"]
    assert core.EAGER_MIN_SIZE == ef.MIN_SIZE  # the other forms keep their kernels


def test_without_numba_numpy_runs(fresh_loader, monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)  # `import numba` raises ImportError
    x = np.linspace(-2.0, 2.0, 2 * ef.MIN_SIZE)
    np.testing.assert_array_equal(ew.sin.impl(x), np.sin(x))
    assert ef.wait_ready(600)
    assert ef.enabled() is False
    assert core.EAGER_MIN_SIZE == sys.maxsize  # small and large calls: NumPy, no check
    assert ew.sin.impl is np.sin  # no hook left
    np.testing.assert_array_equal(ew.sin.impl(x), np.sin(x))
    g = dp.grad(lambda x: dnp.sum(dnp.tanh(x)))(x)
    np.testing.assert_array_equal(g, 1.0 * (1.0 - np.tanh(x) * np.tanh(x)))


def test_hooks_only_where_a_kernel_can_run_and_the_config_switch():
    # NumPy's SIMD loops beat the kernels of these impls in every dtype: no wrapper at all
    for prim, ufunc in ((ew.tanh, np.tanh), (ew.log, np.log), (ew.log1p, np.log1p),
                        (ew.expm1, np.expm1), (ew.exp, np.exp)):
        assert prim.impl is ufunc, prim
        assert not ef.runs_impl(prim)
    # sin and cos (float64) and logistic (both) may run a kernel: their impls ask first
    for prim in (ew.sin, ew.cos, ew.logistic):
        assert ef.runs_impl(prim) and prim.impl.__name__ == prim.name
    x = np.linspace(-2.0, 2.0, 2 * ef.MIN_SIZE)
    _loaded((ew.sin, -1, None, None, (x,)))
    try:
        dp.config.eager_kernels = False
        assert ew.sin.impl is np.sin and core.EAGER_MIN_SIZE == sys.maxsize
        kernels = ef.stats["kernel"]
        np.testing.assert_array_equal(dp.grad(lambda v: dnp.sum(dnp.sin(v)))(x), np.cos(x))
        assert ef.stats["kernel"] == kernels
    finally:
        dp.config.eager_kernels = True
    assert dp.config.eager_kernels and ew.sin.impl is not np.sin
    _assert_close(ew.sin.impl(x), np.sin(x), np.float64, "sin, kernels back on")
    assert ef.stats["kernel"] == kernels + 1


def _python(code: str, cache: str) -> subprocess.CompletedProcess:
    env = {**__import__("os").environ, "DIFFPROG_CACHE_DIR": cache}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.mark.slow
def test_import_does_not_import_numba_and_the_loader_does(tmp_path):
    code = (
        "import sys, numpy as np, diffprog as dp, diffprog.numpy as dnp\n"
        "from diffprog.kernels import eager_fast as ef\n"
        "assert 'numba' not in sys.modules\n"
        "dp.grad(lambda x: dnp.sum(dnp.sin(x)))(np.ones(10))\n"
        "assert 'numba' not in sys.modules and ef._loader[0] is None  # small arrays: NumPy\n"
        "x = np.linspace(0, 1, 10**5)\n"
        "g = dp.grad(lambda x: dnp.sum(dnp.sin(x)))(x)\n"
        "assert ef.stats['kernel'] == 0, ef.stats  # the first call ran NumPy\n"
        "assert ef.wait_ready(600) and 'numba' in sys.modules\n"
        "g = dp.grad(lambda x: dnp.sum(dnp.sin(x)))(x)\n"
        "assert ef.stats['kernel'] == 2, ef.stats\n"
    )
    proc = _python(code, str(tmp_path / "cache"))
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("slow", [True, False])
def test_exit_does_not_wait_for_the_loader(tmp_path, slow):
    # slow: the seam holds the loader forever; else a real load (cold cache: numba's import,
    # then compilations) is under way when the script ends. Either way the process exits
    # at once (the loader is a daemon thread), cleanly.
    code = (
        "import sys, time, numpy as np, diffprog as dp, diffprog.numpy as dnp\n"
        "from diffprog.kernels import eager_fast as ef\n"
        + ("ef._compile = lambda spec, dtype: time.sleep(3600)\n" if slow else "")
        + "x = np.linspace(0, 1, 10**5)\n"
        "g = dp.grad(lambda x: dnp.sum(dnp.sin(x)))(x)\n"
        "np.testing.assert_array_equal(g, np.cos(x))\n"
        "assert ef._loader[0] is not None and not ef.wait_ready(0.01)\n"
        "print('exiting')\n"
    )
    proc = _python(code, str(tmp_path / "cache"))
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "exiting\n", "")
