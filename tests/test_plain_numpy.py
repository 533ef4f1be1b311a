"""Code written for NumPy, before diffprog existed, differentiated as it is."""

from __future__ import annotations

import numpy as np

import diffprog as dp
import diffprog.numpy as dnp


def energy(state):  # issue 3's example, verbatim
    r = np.linalg.norm(state["pos"][:, None, :] - state["pos"][None, :, :]
                       + np.eye(3)[..., None], axis=-1)
    return np.sum(1.0 / r ** 12 - 1.0 / r ** 6) + 0.5 * np.sum(state["vel"] ** 2)


def energy_dnp(state):
    r = dnp.linalg.norm(state["pos"][:, None, :] - state["pos"][None, :, :]
                        + np.eye(3)[..., None], axis=-1)
    return dnp.sum(1.0 / r ** 12 - 1.0 / r ** 6) + 0.5 * dnp.sum(state["vel"] ** 2)


def test_energy_example_forces():
    rng = np.random.default_rng(0)
    state = {"pos": rng.uniform(0.2, 1.0, (3, 2)) * [1.0, 2.0], "vel": rng.standard_normal((3, 2))}
    forces = dp.grad(energy)(state)
    assert set(forces) == {"pos", "vel"} and forces["pos"].shape == (3, 2)
    np.testing.assert_allclose(forces["vel"], state["vel"])
    np.testing.assert_allclose(forces["pos"], dp.numerical_grad(energy, state)["pos"],
                               rtol=1e-5)
    # the same gradients as the diffprog.numpy version, and both modes to order 2
    np.testing.assert_allclose(forces["pos"], dp.grad(energy_dnp)(state)["pos"], rtol=1e-13)
    dp.check_grads(energy, (state,), order=2, rtol=1e-5, atol=1e-5)


def test_numpy_calls_on_traced_values_everywhere():
    def f(a, x):
        y = np.linalg.solve(a, x)
        z = np.einsum("ij,j->i", a, y) + np.concatenate([x[:1], x[1:]])
        return np.sum(np.sin(z) * x.dot(y)) + np.mean(np.clip(z, -1, 1)) + np.max(np.abs(z))
    rng = np.random.default_rng(1)
    a, x = rng.standard_normal((3, 3)) + 3 * np.eye(3), rng.standard_normal(3)
    dp.check_grads(f, (a, x), order=2)


def test_scipy_special_ufuncs_are_differentiated():
    # scipy.special's ufuncs are NumPy ufuncs: NumPy hands them to traced values, and diffprog
    # recognizes them as scipy.special's own objects (not by name: a look-alike is refused)
    import pytest
    import scipy.special

    x = np.array([-3.0, 0.0, 2.0])
    sig = 1.0 / (1.0 + np.exp(-x))
    np.testing.assert_allclose(dp.grad(lambda x: np.sum(scipy.special.expit(x)))(x),
                               sig * (1 - sig), rtol=1e-14)
    np.testing.assert_allclose(dp.grad(lambda x: np.sum(scipy.special.log_expit(x)))(x),
                               1 - sig, rtol=1e-14)
    np.testing.assert_allclose(dp.grad(lambda x: np.sum(scipy.special.erf(x)))(x),
                               2 / np.sqrt(np.pi) * np.exp(-x * x), rtol=1e-13)
    np.testing.assert_allclose(dp.grad(lambda x: np.sum(scipy.special.erfc(x)))(x),
                               -2 / np.sqrt(np.pi) * np.exp(-x * x), rtol=1e-13)

    class FakeUfunc:  # named like scipy.special.expit, but not it
        __name__ = "expit"
    with pytest.raises(TypeError, match="ufunc expit is not differentiable"):
        dp.grad(lambda x: dnp.sum(x.__array_ufunc__(FakeUfunc(), "__call__", x)))(x)
