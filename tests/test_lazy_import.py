"""import diffprog loads neither diffprog.control, custom, nn, testing, the FFT (numpy.fft too),
the eager kernels' module nor logging; they load on first use and behave as if imported
eagerly."""

import subprocess
import sys

import numpy as np
import pytest

import diffprog as dp
from diffprog import core
from diffprog.core import primitives
from diffprog.kernels import eager_fast as ef

_PROBE = """
import sys, numpy as np, diffprog as dp
lazy = ("diffprog.control", "diffprog.custom", "diffprog.nn", "diffprog.testing",
        "diffprog.batching", "diffprog.numpy.fft", "diffprog.prims.fft", "numpy.fft",
        "diffprog.numpy.linalg", "diffprog.numpy._names", "diffprog.numpy._more",
        "diffprog.kernels.eager_fast", "logging", "threading", "numba")
assert not [m for m in lazy if m in sys.modules], [m for m in lazy if m in sys.modules]
assert {"scan", "nn", "custom_jvp"} <= set(dir(dp)) and set(dp.__all__) <= set(dir(dp))
from diffprog import scan
assert "diffprog.control" in sys.modules and dp.scan is scan
# np.fft on a traced value imports diffprog.numpy.fft, which registers numpy.fft's functions
g = dp.grad(lambda x: np.sum(np.abs(np.fft.rfft(x)) ** 2))(np.arange(4.0))
# Parseval: the three bins of n=4 sum to 4|x|^2 - |X_1|^2, X_1 = (x0 - x2) - i(x1 - x3)
np.testing.assert_allclose(g, [4.0, 12.0, 12.0, 20.0], rtol=1e-14)
assert dp.numpy.fft.fft is sys.modules["diffprog.numpy.fft"].fft
assert dp.nn.relu is sys.modules["diffprog.nn"].relu
# np.linalg likewise: d det(a) = det(a) a^-T
a = np.array([[2.0, 1.0], [0.5, 3.0]])
np.testing.assert_allclose(dp.grad(np.linalg.det)(a), 5.5 * np.linalg.inv(a).T, rtol=1e-14)
assert "diffprog.numpy.linalg" in sys.modules
# the modules of diffprog/numpy/_catalog.py: a NumPy ufunc without a rule yet on a traced value
# loads them all: d/dx heaviside(x, h) x = heaviside(x, h) away from 0, d/dx copysign(x, -1)
# = d/dx -|x| = -sign(x)
g = dp.grad(lambda x: np.sum(np.heaviside(x, 0.5) * x + np.copysign(x, -1.0)))(
    np.array([2.0, -3.0]))
np.testing.assert_array_equal(g, [0.0, 1.0])
assert "diffprog.numpy._names" in sys.modules and "diffprog.numpy._more" in sys.modules
assert dp.numpy.nanmax is sys.modules["diffprog.numpy._names"].nanmax
assert "nanmax" in vars(dp.numpy)  # a plain attribute now: __getattr__ is not asked again
assert dp.vmap(np.sin)(np.zeros(2)).shape == (2,) and "diffprog.batching" in sys.modules
import diffprog.jit
assert dp.jit is sys.modules["diffprog.jit"].jit  # not the submodule, which has its name
x = np.linspace(0.0, 1.0, 2 * dp._LazyEagerProvider.MIN_SIZE)
np.testing.assert_allclose(dp.numpy.sin(x), np.sin(x), rtol=1e-15)  # the first large call
from diffprog.kernels import eager_fast as ef
from diffprog import core
assert core._eager_provider is ef.run and core.EAGER_MIN_SIZE == ef.MIN_SIZE
print(float(dp.grad(lambda c: dp.scan(lambda a, b: (a * b, a), c, np.arange(3.0))[0])(2.0)))
"""


@pytest.mark.slow
def test_import_is_lazy_and_first_use_loads():
    r = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    assert float(r.stdout) == 0.0  # d/dc (c * 0 * 1 * 2) = 0


def test_stub_provider_agrees_with_eager_fast():
    stub = dp._LazyEagerProvider()
    assert stub.MIN_SIZE == ef.MIN_SIZE
    for name, prim in primitives.items():
        assert stub.runs_impl(prim) == ef.runs_impl(prim), name


def test_stub_provider_hands_over_to_eager_fast():
    previous = core._eager_provider, core.EAGER_MIN_SIZE
    stub = dp._LazyEagerProvider()
    try:
        core.set_eager_provider(stub, stub.MIN_SIZE)
        from diffprog.prims import elementwise as ew
        x = np.linspace(0.0, 1.0, 2 * stub.MIN_SIZE)
        r = stub(ew.sin, -1, None, None, (x,))
        assert r is None or np.allclose(r, np.sin(x), rtol=1e-15)
        assert core._eager_provider is ef.run
    finally:
        core.set_eager_provider(*previous)


def test_control_names_resolve():
    import diffprog.control as control
    for name in ("cond", "switch", "scan", "fori_loop", "while_loop"):
        assert getattr(dp, name) is getattr(control, name)
    try:
        dp.no_such_name  # noqa: B018
    except AttributeError as e:
        assert "no_such_name" in str(e)
    else:
        raise AssertionError("no AttributeError")


def _lazy_probe(first: str) -> str:
    return ("import sys, numpy as np, diffprog as dp, diffprog.numpy as dnp\n"
            "assert 'diffprog.numpy._more' not in sys.modules\n" + first + "\n"
            "print('diffprog.numpy._more' in sys.modules, 'diffprog.numpy._names' in sys.modules)")


@pytest.mark.slow
@pytest.mark.parametrize("first, loads", [
    # a name read from diffprog.numpy loads its module only
    ("assert dnp.linspace(0.0, 1.0, 3).tolist() == [0.0, 0.5, 1.0]", "True False"),
    ("assert dnp.zeros(2).tolist() == [0.0, 0.0]", "False True"),
    ("from diffprog.numpy import nanmax; assert nanmax is dnp.nanmax", "False True"),
    # an np.* function without a rule yet on a traced value loads both; d/dx sinc at 0 is 0
    ("assert dp.grad(lambda x: np.sum(np.sinc(x)))(np.zeros(1)).tolist() == [0.0]", "True True"),
])
def test_catalog_modules_load_on_first_use(first, loads):
    r = subprocess.run([sys.executable, "-c", _lazy_probe(first)], capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == loads


def test_catalog_lists_every_public_name_of_its_modules():
    import importlib

    import diffprog.numpy as dnp
    from diffprog.numpy import _catalog
    for module, names in _catalog.MODULES.items():
        loaded = importlib.import_module(module, "diffprog.numpy")
        defined = {n for n, v in vars(loaded).items() if not n.startswith("_")
                   and getattr(v, "__module__", None) == loaded.__name__ and callable(v)}
        assert defined <= set(names), (module, defined - set(names))
        assert loaded.__all__ == names and set(names) <= set(dnp.__all__) <= set(dir(dnp))
        assert all(getattr(dnp, n) is getattr(loaded, n) for n in names)
