"""The systems we compare against, loaded under one thread count, and per-system array adapters.

Every system gets the same number of threads: ``configure_threads`` must run before NumPy, JAX or
PyTorch is imported (environment variables are read when a thread pool starts), and
``load_peers`` then caps the pools that are already running (threadpoolctl for every BLAS and
OpenMP library in the process, ``torch.set_num_threads``). A peer that fails to import is left
out with a note; nothing here is required but NumPy and diffprog.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMBA_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


def xla_flags(threads: int) -> str:
    """XLA's CPU flags for ``threads`` threads (Eigen's pool off for one thread)."""
    eigen = "false" if threads == 1 else "true"
    return f"--xla_cpu_multi_thread_eigen={eigen} intra_op_parallelism_threads={threads}"


def configure_threads(threads: int) -> None:
    """Set the thread-count environment for this process and the subprocesses it starts."""
    for var in _THREAD_VARS:
        os.environ[var] = str(threads)
    os.environ["XLA_FLAGS"] = xla_flags(threads)
    # JAX would otherwise grab every core for its own dispatch thread pool on some versions.
    os.environ.setdefault("JAX_PLATFORMS", "cpu")


@dataclass
class Peers:
    """The loaded systems: a module, or None when it is not installed or failed to import."""
    threads: int
    autograd: Any = None
    jax: Any = None
    torch: Any = None
    optree: Any = None
    notes: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    limiter: Any = None  # the threadpoolctl limit, kept alive for the whole run


def _jax_imports(env: dict) -> str | None:
    """Import JAX in a child process first: XLA aborts the whole process on a flag it does not
    know, and a peer must never take the runner down with it."""
    code = ("import jax; jax.config.update('jax_enable_x64', True); import jax.numpy as jnp; "
            "jnp.ones(2).block_until_ready()")
    try:
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    if proc.returncode == 0:
        return None
    lines = (proc.stderr or proc.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit code {proc.returncode}"


def load_peers(threads: int, want: set[str] | None = None) -> Peers:
    """Import the peers named in ``want`` (all when None) and cap every thread pool."""
    import numpy as np

    import diffprog

    peers = Peers(threads)
    peers.versions.update(python=platform.python_version(), numpy=np.__version__,
                          diffprog=diffprog.__version__)
    wanted = (lambda name: want is None or name in want)
    if wanted("autograd"):
        try:
            import autograd
            peers.autograd = autograd
            peers.versions["autograd"] = _version("autograd")
        except Exception as e:  # any import failure leaves the peer out
            peers.notes.append(f"autograd left out: {type(e).__name__}: {e}")
    if wanted("jax"):
        err = _jax_imports(dict(os.environ))
        if err is None:
            try:
                import jax
                jax.config.update("jax_enable_x64", True)
                peers.jax = jax
                peers.versions["jax"] = jax.__version__
            except Exception as e:
                err = f"{type(e).__name__}: {e}"
        if err is not None:
            peers.notes.append(f"jax left out: {err}")
    if wanted("torch"):
        try:
            import torch
            torch.set_num_threads(threads)
            try:
                torch.set_num_interop_threads(threads)
            except RuntimeError:  # only settable before the first parallel work
                pass
            peers.torch = torch
            peers.versions["torch"] = torch.__version__
        except Exception as e:
            peers.notes.append(f"torch left out: {type(e).__name__}: {e}")
    if wanted("optree"):
        try:
            import optree
            peers.optree = optree
            peers.versions["optree"] = _version("optree")
        except Exception as e:
            peers.notes.append(f"optree left out: {type(e).__name__}: {e}")
    try:
        from threadpoolctl import threadpool_limits
        # After the imports, so that the pools torch and jax bring are capped too.
        peers.limiter = threadpool_limits(limits=threads)
    except ImportError:
        peers.notes.append("threadpoolctl not installed: BLAS thread count set only through "
                           "environment variables")
    return peers


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def blas_info() -> str:
    """The BLAS library and kernel NumPy runs (OPENBLAS_CORETYPE changes it), via threadpoolctl."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return "; ".join(f"{i.get('internal_api')} {i.get('version')} kernel "
                     f"{i.get('architecture')}, {i.get('num_threads')} threads"
                     for i in infos) or "none found"


def machine_info() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}"


# ----------------------------------------------------------------------------------------------
# Backends: one namespace per system with the few operations the workloads are written in, so
# that one function body serves NumPy, diffprog, autograd, jax.numpy and torch alike.


def backends(peers: Peers) -> dict[str, SimpleNamespace]:
    """``{"numpy", "diffprog", "autograd", "jax", "torch"}`` -> namespace of sin, cos, exp, tanh,
    sum (of everything), lse_rows (logsumexp over axis 1, kept), const (array from NumPy)."""
    import numpy as np

    import diffprog.numpy as dnp

    def np_lse(z):
        top = z.max(axis=1, keepdims=True)
        return top + np.log(np.exp(z - top).sum(axis=1, keepdims=True))

    out = {
        "numpy": SimpleNamespace(sin=np.sin, cos=np.cos, exp=np.exp, tanh=np.tanh, sum=np.sum,
                                 lse_rows=np_lse, const=np.asarray),
        "diffprog": SimpleNamespace(sin=dnp.sin, cos=dnp.cos, exp=dnp.exp, tanh=dnp.tanh,
                                    sum=dnp.sum, const=np.asarray,
                                    lse_rows=lambda z: dnp.logsumexp(z, axis=1, keepdims=True)),
    }
    if peers.autograd is not None:
        import autograd.numpy as anp
        from autograd.scipy.special import logsumexp
        out["autograd"] = SimpleNamespace(
            sin=anp.sin, cos=anp.cos, exp=anp.exp, tanh=anp.tanh, sum=anp.sum, const=np.asarray,
            lse_rows=lambda z: logsumexp(z, axis=1, keepdims=True))
    if peers.jax is not None:
        import jax
        import jax.numpy as jnp
        out["jax"] = SimpleNamespace(
            sin=jnp.sin, cos=jnp.cos, exp=jnp.exp, tanh=jnp.tanh, sum=jnp.sum, const=jnp.asarray,
            lse_rows=lambda z: jax.nn.logsumexp(z, axis=1, keepdims=True))
    if peers.torch is not None:
        torch = peers.torch
        out["torch"] = SimpleNamespace(
            sin=torch.sin, cos=torch.cos, exp=torch.exp, tanh=torch.tanh, sum=torch.sum,
            const=torch.from_numpy,
            lse_rows=lambda z: torch.logsumexp(z, dim=1, keepdim=True))
    return out
