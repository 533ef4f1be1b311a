"""Every example runs at its small size and reaches its goal; the benchmarks' hand-written
derivatives agree with diffprog's (so the "hand-written backward" rows time correct code)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import diffprog as dp

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being created
    spec.loader.exec_module(module)
    return module


def run_example(name: str, capsys) -> tuple[dict, str]:
    result = load_example(name).main(small=True)
    return result, capsys.readouterr().out


def test_every_example_is_tested():
    tested = {"tour", "mlp", "physics", "newton", "implicit", "graph", "bayes", "spectral",
              "rnn", "distributed_logreg"}  # distributed_logreg: in tests/test_distributed.py
    assert {p.stem for p in EXAMPLES.glob("*.py")} == tested


def test_tour(capsys):
    r, out = run_example("tour", capsys)
    assert r["same_structure"] and r["check_grads"] and r["jvp_vjp_agree"]
    assert r["plain_numpy_error"] < 1e-6
    assert r["hessian_error"] < 1e-12 and r["jac_fwd_rev_diff"] < 1e-12
    assert r["hvp_error"] < 1e-12
    assert r["graph_nodes"] > 3
    for k in range(1, 9):
        assert f"== {k}. " in out


@pytest.mark.slow
def test_mlp_reaches_95_percent(capsys):
    r, out = run_example("mlp", capsys)
    assert r["accuracy"] >= 0.95
    assert out.startswith("two spirals")
    assert sum(line.startswith("epoch ") for line in out.splitlines()) == r["epochs"]


@pytest.mark.slow
def test_physics_hits_the_target(capsys):
    r, out = run_example("physics", capsys)
    assert r["hit_error"] < 1e-6
    assert r["iterations"] < 15
    assert r["grad_error"] < 1e-5
    # the gradient with respect to a dataclass is that dataclass, with every field
    g = r["grad_state"]
    assert type(g).__name__ == "State" and g.pos.shape == (2,) and np.ndim(g.drag) == 0
    np.testing.assert_allclose(g.pos, [0.0, 1.0], atol=1e-12)  # a shift moves the end point
    assert float(g.drag) < 0
    assert "iteration  1" in out


def test_newton_on_rosenbrock(capsys):
    r, out = run_example("newton", capsys)
    assert r["steps"] < 30
    np.testing.assert_allclose(r["x"], [1.0, 1.0], atol=1e-8)
    assert r["f"] < 1e-16
    assert "converged in" in out


def test_implicit_function_gradient(capsys):
    r, _ = run_example("implicit", capsys)
    assert r["residual"] < 1e-12
    assert r["err_unrolled"] < 1e-10  # 200 iterations of a 0.6-contraction: fully converged
    assert r["err_numerical"] < 1e-6
    assert r["nodes_implicit"] < 10 < r["nodes_unrolled"]


@pytest.mark.slow
def test_rnn_trains_with_scan(capsys):
    r, out = run_example("rnn", capsys)
    assert r["err_loop"] < 1e-12 and r["err_ckpt"] < 1e-12  # scan = unrolled = checkpointed
    assert r["nodes"][0] == r["nodes"][1]  # 10 or 1,000 steps: the same graph
    assert r["final_loss"] < 0.01 < 0.1 < r["first_loss"]
    assert r["traces"] == 1 and "epoch  150" in out


def test_graph_writes_dot(tmp_path, capsys):
    r = load_example("graph").main(out=str(tmp_path / "g.svg"), small=True)
    out = capsys.readouterr().out
    assert r["nodes"] > 3 and "nodes recorded" in out
    assert Path(r["dot"]).read_text().lstrip().startswith("digraph")
    if r["picture"] is not None:  # only where Graphviz is installed
        assert Path(r["picture"]).exists()


@pytest.mark.slow
def test_examples_run_as_scripts():
    """The command-line switch, as `make demo` and a user run them (newton is the fastest)."""
    proc = subprocess.run([sys.executable, str(EXAMPLES / "newton.py"), "--small"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "converged in" in proc.stdout


# ----------------------------------------------------------------------------------------------
# The benchmarks' hand-written derivatives


@pytest.fixture(scope="module")
def backends():
    sys.path.insert(0, str(ROOT))
    from benchmarks.peers import Peers, backends
    return backends(Peers(threads=1))


@pytest.mark.slow
def test_benchmark_hand_written_gradients(backends):
    from benchmarks import chain, hessian, jacobian, mlp, overhead
    D = backends["diffprog"]
    x = np.linspace(0.1, 1.0, 10)
    g = dp.grad(lambda x: overhead.chain(D, x))(x)
    np.testing.assert_allclose(overhead.numpy_backward(x), g, rtol=1e-12)
    x = chain.make_input(1000)
    g = dp.grad(lambda x: chain.chain(D, x))(x)
    np.testing.assert_allclose(chain.numpy_backward(x), g, rtol=1e-12, atol=1e-14)
    params, xb, onehot = mlp.make_problem()
    g = dp.grad(lambda p: mlp.loss(D, p, xb, onehot))(params)
    hand = mlp.numpy_backward(params, xb, onehot)
    for a, b in zip(dp.tree_leaves(hand), dp.tree_leaves(g)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)
    A, v = hessian.make_problem()
    H = dp.hessian(lambda v: hessian.f(D, v, A))(v)
    np.testing.assert_allclose(hessian.numpy_hessian(v, A), H, rtol=1e-12, atol=1e-14)
    W, v = np.random.default_rng(0).standard_normal((7, 3)), np.array([0.1, -0.5, 2.0])
    J = dp.jacrev(lambda v: jacobian.f(D, v, W))(v)
    np.testing.assert_allclose(jacobian.numpy_jacobian(v, W), J, rtol=1e-12, atol=1e-14)


@pytest.mark.slow
def test_bayes_gaussian_process_fit(capsys):
    pytest.importorskip("scipy")
    r, out = run_example("bayes", capsys)
    assert r["success"]
    assert r["grad_norm"] < 1e-4  # the optimizer stopped at a stationary point of the posterior
    assert r["max_err"] < 0.25    # the posterior mean follows the true function
    assert 0.02 < r["noise"] < 0.3  # the data's noise level (0.1) is recovered in scale
    assert "L-BFGS-B" in out


@pytest.mark.slow
def test_spectral_recovers_the_burgers_initial_condition(capsys):
    r, out = run_example("spectral", capsys)
    assert r["coeff_error"] < 1e-8   # the known coefficients, from a zero start
    assert r["misfit"] < 1e-18
    assert r["grad_error"] < 1e-6    # gradient through the solver vs central differences
    assert r["jit_vs_eager"] < 1e-12 and r["traces"] == 1
    assert "BFGS from u0 = 0" in out
    # the solver itself: at a tiny amplitude Burgers is the heat equation, so sin x decays
    # as exp(-nu t); linearized at u0 = 0 it is exactly the heat equation, so the gradient of
    # <sin x, u(T)> with respect to u0 (through the rfft/irfft transposes) is exp(-nu T) sin x
    spectral = load_example("spectral")
    solver = spectral.Burgers(n=32)
    u_end = solver.solve(1e-8 * np.sin(solver.x), 10)
    np.testing.assert_allclose(u_end, 1e-8 * np.exp(-solver.nu * 10 * solver.dt)
                               * np.sin(solver.x), rtol=1e-6, atol=1e-20)
    g = dp.grad(lambda u0: np.sum(np.sin(solver.x) * solver.solve(u0, 10)))(
        np.zeros(32))
    np.testing.assert_allclose(g, np.exp(-solver.nu * 10 * solver.dt) * np.sin(solver.x),
                               rtol=1e-13, atol=1e-14)
