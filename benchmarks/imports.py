"""I, import time: ``import diffprog`` beside ``import numpy``, with bytecode cached.

Each measurement is a fresh ``python -X importtime -c "import <module>"``; the time is the
cumulative import time Python reports for the module (interpreter start-up excluded). The two
imports take turns, one process each per round, so that load from other processes falls on
both alike; the table gives medians. Bytecode is cached in a private directory
(``PYTHONPYCACHEPREFIX``, 0700, made for the run) filled by a warm-up import of each, so the
numbers do not depend on whether ``PYTHONDONTWRITEBYTECODE`` is set or the package directory is
writable. Each diffprog process also checks that numba was not imported (issue 17: ``import
diffprog`` stays under 1.2x ``import numpy`` and never imports numba), and the table records
in how many processes it was.

Run alone: ``python -m benchmarks --only I`` or ``python benchmarks/imports.py``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ID = "I"
TITLE = "I — import time: import diffprog vs import numpy (bytecode cached)"
ROOT = Path(__file__).resolve().parent.parent
BAR = 1.2
_CHECK = "import sys; print('numba imported:', 'numba' in sys.modules)"


def _import_us(module: str, env: dict) -> tuple[float, bool | None]:
    """Cumulative import time of ``module`` in a fresh process, in microseconds, and (for
    diffprog) whether the import left numba in ``sys.modules``."""
    code = f"import {module}" + (f"; {_CHECK}" if module == "diffprog" else "")
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"import {module} failed: {done.stderr[-1000:]}")
    numba = ("numba imported: True" in done.stdout) if module == "diffprog" else None
    for line in reversed(done.stderr.splitlines()):
        parts = line.split("|")
        if len(parts) == 3 and parts[2].strip() == module:
            return float(parts[1]), numba
    raise RuntimeError(f"no importtime line for {module}")


def measure(rounds: int = 21) -> tuple[dict[str, list[float]], int]:
    """Interleaved import times (seconds) of numpy and diffprog, ``rounds`` each, and the
    number of diffprog processes (warm-up included) whose import loaded numba."""
    with tempfile.TemporaryDirectory(prefix="diffprog-pycache-") as cache:  # 0700
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
        times: dict[str, list[float]] = {"numpy": [], "diffprog": []}
        numba = 0
        for module in times:  # warm-up: writes the bytecode
            numba += bool(_import_us(module, env)[1])
        for _ in range(rounds):
            for module in times:
                us, loaded = _import_us(module, env)
                times[module].append(us * 1e-6)
                numba += bool(loaded)
    return times, numba


def run(ctx):
    from .harness import Table, fmt_range, fmt_time
    rounds = 7 if getattr(ctx, "quick", False) else 21
    times, numba = measure(rounds)
    np_median = statistics.median(times["numpy"])
    rows, data = [], []
    for module, ts in times.items():
        m = statistics.median(ts)
        ratio = m / np_median
        verdict = "—" if module == "numpy" else ("met" if ratio <= BAR else "**missed**")
        row = {"system": f"import {module}", "median_s": m, "min_s": min(ts),
               "max_s": max(ts), "ratio": ratio, "times_s": ts}
        if module == "diffprog":
            row.update(numba_imported=numba, processes=rounds + 1)
        rows.append([f"import {module}", fmt_time(m), fmt_range(min(ts), max(ts)),
                     f"{ratio:.2f}x", verdict,
                     "—" if module == "numpy" else f"{numba} of {rounds + 1} processes"])
        data.append(row)
    desc = (f"Cumulative import time from `python -X importtime`, median of {rounds} fresh "
            "processes each, the two imports taking turns; bytecode cached beforehand in a "
            "private PYTHONPYCACHEPREFIX. `import diffprog` includes NumPy's import. \"numba "
            "imported\": in how many diffprog processes (the warm-up included) `import "
            "diffprog` left numba in sys.modules (issue 17: never).")
    notes = []
    if hasattr(os, "getloadavg"):
        notes.append("load average (1 min) at the end of the run: "
                     f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    columns = ["import", "median", "min–max", "vs import numpy", f"bar ≤ {BAR}x",
               "numba imported"]
    return [Table(ID, TITLE, desc, columns, rows, data, notes)]


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    from benchmarks.run import main
    main(["--only", ID, *sys.argv[1:]])
