"""The benchmark runner: ``python -m benchmarks [--quick] [--threads N] [--only W1,W3]``.

Runs each workload (one module each: overhead W1, chain W2, mlp W3, hessian W4, jacobian J,
trees W5, memory W6, coldstart C, smallops S, scan W8, grad_sum on Dask W9: dask_grad, imports
I) on every installed system with the same thread count, prints progress to stderr and a table
per workload to stdout, and writes
- ``benchmarks/results/<ID>.json``: the raw numbers and the run's metadata, one file a workload;
- ``benchmarks/RESULTS.md``: every table found in the results directory, the speed bars of the
  issues (benchmarks/bars.py) with their verdicts, grouped by issue, and the machine, command
  and BLAS kernel each table was measured with;
- ``benchmarks/results/benchmarks.png``: the chart (matplotlib, when installed).
``--quick`` (under two minutes) writes to ``benchmarks/results/quick/`` instead, so that a
smoke run never replaces the full run's record. Nothing is imported before the thread count is
set: NumPy, JAX and PyTorch read it when their thread pools start.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import shlex
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKLOADS = {"W1": "overhead", "W2": "chain", "W3": "mlp", "W4": "hessian", "J": "jacobian",
             "W5": "trees", "W6": "memory", "C": "coldstart", "S": "smallops", "W8": "scan",
             "W9": "dask_grad", "I": "imports"}
CHART = "benchmarks.png"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="fewer repeats and iterations (under two minutes); writes to "
                        "benchmarks/results/quick/")
    p.add_argument("--threads", type=int, default=1,
                   help="threads for every system: BLAS, OpenMP, torch, XLA (default 1)")
    p.add_argument("--only", default="",
                   help=f"comma-separated workloads to run, of {','.join(WORKLOADS)}")
    p.add_argument("--out", type=Path, default=None,
                   help="results directory (default benchmarks/results, or its quick/)")
    p.add_argument("--report-only", action="store_true",
                   help="measure nothing: rebuild the markdown and the chart from the JSON files")
    p.add_argument("--markdown", type=Path, default=None,
                   help="where to write the markdown report (default benchmarks/RESULTS.md, "
                        "or RESULTS.md in the results directory for --quick)")
    args = p.parse_args(argv)
    args.only = [w.strip().upper() for w in args.only.split(",") if w.strip()] or list(WORKLOADS)
    unknown = [w for w in args.only if w not in WORKLOADS]
    if unknown:
        p.error(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
    if args.threads < 1:
        p.error("--threads must be at least 1")
    if args.out is None:
        args.out = HERE / "results" / ("quick" if args.quick else "")
    if args.markdown is None:
        args.markdown = args.out / "RESULTS.md" if args.quick else HERE / "RESULTS.md"
    return args


def command_line(argv: list[str]) -> str:
    """The command as typed from the repository root, with the OpenBLAS variables it ran under
    (they change NumPy's kernel, so they belong to the command)."""
    exe = Path(sys.executable)
    try:
        exe_s = str(exe.relative_to(Path.cwd()))
    except ValueError:
        exe_s = "python" if exe.parent == Path(sys.prefix) / "bin" else str(exe)
    unset = [v for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if v not in os.environ]
    setv = [f"{v}={os.environ[v]}" for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
            if v in os.environ]
    prefix = ""
    if unset or setv:
        prefix = "env " + " ".join([f"-u {v}" for v in unset] + setv) + " "
    return prefix + shlex.join([exe_s, "-m", "benchmarks", *argv])


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    from .peers import configure_threads
    configure_threads(args.threads)

    start = time.perf_counter()
    if args.report_only:
        _report(args, start)
        return
    from .harness import Context
    from .peers import blas_info, load_peers, machine_info, xla_flags
    print(f"loading peers with {args.threads} thread(s) ...", file=sys.stderr, flush=True)
    peers = load_peers(args.threads)
    for note in peers.notes:
        print(f"note: {note}", file=sys.stderr)
    ctx = Context(peers, quick=args.quick, threads=args.threads)
    if args.quick:
        ctx.repeat, ctx.min_time, ctx.budget = 5, 0.01, 0.3
    meta = {"command": command_line(argv), "quick": args.quick, "threads": args.threads,
            "min_time_s": ctx.min_time, "repeat": ctx.repeat, "budget_s": ctx.budget,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine_info(), "blas": blas_info(), "versions": peers.versions,
            "xla_flags": xla_flags(args.threads), "peer_notes": peers.notes}
    args.out.mkdir(parents=True, exist_ok=True)
    for wid in args.only:
        module = importlib.import_module(f".{WORKLOADS[wid]}", __package__)
        t0 = time.perf_counter()
        print(f"\n== {wid} ({WORKLOADS[wid]}.py) ==", file=sys.stderr, flush=True)
        ctx.notes = []
        tables = module.run(ctx)
        for t in tables:
            t.notes = ctx.notes + t.notes
            print(f"\n### {t.title}\n\n{t.markdown()}\n", flush=True)
            for n in t.notes:
                print(f"note: {n}")
        record = {"meta": {**meta, "seconds": time.perf_counter() - t0},
                  "tables": [t.to_json() for t in tables]}
        tmp = args.out / f"{wid}.json.tmp"
        tmp.write_text(json.dumps(record, indent=1) + "\n")
        tmp.replace(args.out / f"{wid}.json")
    _report(args, start)


def _report(args: argparse.Namespace, start: float) -> None:
    from .report import write_chart, write_markdown
    chart = write_chart(args.out, args.out / CHART)
    verdicts = write_markdown(args.out, args.markdown, chart)
    from .bars import issues_label
    print(f"\nbars ({issues_label(verdicts)}):")
    for issue in sorted({v["issue"] for v in verdicts}):
        print(f"  issue {issue}:")
        for v in verdicts:
            if v["issue"] == issue:
                status = {True: "met", False: "MISSED", None: "not measured"}[v["met"]]
                print(f"    {status:12} {v['text']}: {v['detail']}")
    print(f"\nwrote {_rel(args.markdown)}, {_rel(args.out)}/*.json"
          + (f", {_rel(chart)}" if chart else " (no chart: matplotlib not installed)")
          + f" in {time.perf_counter() - start:.0f} s")


def _rel(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(p)
