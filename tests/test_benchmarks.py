"""The benchmark harness's bookkeeping (benchmarks/bars.py, report.py, run.py): every speed bar is
judged from the tables of a run, every workload is registered and reported. Nothing is timed
here (speed is measured by `python -m benchmarks`, never asserted in tests)."""

from __future__ import annotations

import doctest
import importlib
import json
import shutil
from pathlib import Path

from benchmarks import bars, report, run
from benchmarks.harness import Table

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def _table(id: str, rows: dict[str, float], **extra: dict) -> Table:
    """A table of ``system: median seconds`` rows; ``extra`` adds fields to named rows."""
    data = [{"system": name, "median_s": t, **extra.get(name, {})} for name, t in rows.items()]
    return Table(id, id, "", [], [], data)


def _verdicts(tables: list[Table], threads: dict[str, int] | None = None) -> dict[str, dict]:
    return {v["id"]: v for v in bars.evaluate({t.id: t for t in tables}, threads)}


def test_bars_doctests():
    assert doctest.testmod(bars).failed == 0


def test_every_bar_has_an_issue_and_a_unique_id():
    ids = [b.id for b in bars.BARS]
    assert len(ids) == len(set(ids))
    assert bars.ISSUES == [6, 11, 15, 16, 17]
    assert set(bars.WHY_MISSED) <= set(ids)


def test_issue_17_bars_met_and_missed():
    met = _verdicts([
        _table("W1", {"diffprog eager": 1.2, "minimal tape (floor)": 1.0, "autograd": 3.0}),
        _table("W1f", {"diffprog eager": 11e-6}),
        _table("W2", {"diffprog eager": 0.9, "torch eager": 1.0}),
        _table("W5", {f"{s} {op}": t for op in ("flatten", "unflatten", "tree_map(f, tree)",
                                                "tree_map(f, tree, tree)")
                      for s, t in (("diffprog", 1.0), ("optree", 1.0))}),
        _table("I", {"import numpy": 0.10, "import diffprog": 0.12},
               **{"import diffprog": {"numba_imported": 0, "processes": 22}}),
    ])
    for id in ("W1", "W1t", "W1f", "W2", "W5f", "W5u", "W5m", "W5m2", "I", "In"):
        assert met[id]["met"] is True, (id, met[id]["detail"])
        assert met[id]["issue"] == (6 if id == "W1" else 17)
    missed = _verdicts([
        _table("W1", {"diffprog eager": 1.3, "minimal tape (floor)": 1.0}),
        _table("W1f", {"diffprog eager": 13e-6}),
        _table("W2", {"diffprog eager": 1.1, "torch eager": 1.0}),
        _table("W5", {"diffprog unflatten": 1.1, "optree unflatten": 1.0, "diffprog flatten": 1.0}),
        _table("I", {"import numpy": 0.10, "import diffprog": 0.13},
               **{"import diffprog": {"numba_imported": 1, "processes": 22}}),
    ])
    for id in ("W1t", "W1f", "W2", "W5u", "I", "In"):
        assert missed[id]["met"] is False, (id, missed[id]["detail"])
    assert "1.30x" in missed["W1t"]["detail"] and missed["W1t"]["why"]
    assert "1 of 22" in missed["In"]["detail"]
    # no optree row for flatten: not judged
    assert missed["W5f"]["met"] is None and "optree flatten" in missed["W5f"]["detail"]


def test_issue_17_bars_hold_at_one_thread_only():
    tables = [_table("W2", {"diffprog eager": 0.9, "torch eager": 1.0})]
    v = _verdicts(tables, {"W2": 2})["W2"]
    assert v["met"] is None and "--threads 2" in v["detail"]
    assert _verdicts(tables, {"W2": 1})["W2"]["met"] is True


def test_issue_11_bars():
    cold = Table("C", "C", "", [], [], [
        {"name": "W1", "bg": {"first": 0.4}}, {"name": "W3", "bg": {"first": 0.6}},
        {"name": "G600", "bg": None}])
    rk4 = _table("S-RK4", {"diffprog jit, default tiers (whole)": 2.9, "jax.jit": 1.0})
    h70 = _table("S-H70", {"diffprog jit, default tiers (fused)": 3.1, "jax.jit": 1.0})
    v = _verdicts([cold, rk4, h70])
    assert [v[k]["met"] for k in ("C-W1", "C-W3", "C-G600", "S-RK4", "S-H70")] == [
        True, False, None, True, False]
    assert "(whole)" in v["S-RK4"]["detail"] and "2.90x" in v["S-RK4"]["detail"]
    assert {v[k]["issue"] for k in ("C-W1", "S-RK4")} == {11}


def test_workloads_registered_and_reported():
    for wid, name in run.WORKLOADS.items():
        module = importlib.import_module(f"benchmarks.{name}")
        assert module.ID == wid and callable(module.run)
        assert wid in report.ORDER, f"{wid}'s table would be left out of RESULTS.md"
    assert run.WORKLOADS["S"] == "smallops"


def test_report_renders_every_bar_from_the_committed_results(tmp_path):
    for path in RESULTS.glob("*.json"):
        shutil.copy(path, tmp_path)
    md = tmp_path / "RESULTS.md"
    verdicts = report.write_markdown(tmp_path, md, None)
    text = md.read_text()
    assert "## The bars (issues 6, 11, 15, 16, 17)" in text
    for issue in bars.ISSUES:
        assert f"### Issue {issue}" in text
    assert [v["id"] for v in verdicts] == [b.id for b in bars.BARS]
    for v in verdicts:
        assert v["text"] in text
    # a bar whose tables are in the results directory is judged, not "not measured"
    present = {t["id"] for p in tmp_path.glob("*.json")
               for t in json.loads(p.read_text())["tables"]}
    for bar, v in zip(bars.BARS, verdicts):
        if bar.table in present:
            assert v["met"] is not None, (bar.id, v["detail"])


def test_runner_prints_the_bars_by_issue(tmp_path, capsys, monkeypatch):
    for path in RESULTS.glob("*.json"):
        shutil.copy(path, tmp_path)
    # the thread variables would reach the subprocesses of later tests; no chart (matplotlib)
    monkeypatch.setattr("benchmarks.peers.configure_threads", lambda threads: None)
    monkeypatch.setattr(report, "write_chart", lambda out_dir, path: None)
    run.main(["--report-only", "--out", str(tmp_path), "--markdown", str(tmp_path / "R.md")])
    out = capsys.readouterr().out
    assert "bars (issues 6, 11, 15, 16, 17):" in out
    assert out.index("  issue 6:") < out.index("  issue 11:") < out.index("  issue 17:")
