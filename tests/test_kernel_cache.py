"""The on-disk kernel cache (diffprog.kernels.cache): private directories, nothing executed from
disk, damaged files repaired, unusable directories refused with one warning, and the results
right in every case."""

from __future__ import annotations

import errno
import os
import pickle
import shutil
import stat
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import diffprog as dp
import diffprog.numpy as dnp
from diffprog.kernels import cache

X = np.linspace(0.0, 1.0, 7)


def f(x):
    return dnp.tanh(dnp.sin(x) * 1.5 + x)


def g(x):
    return dnp.cos(x) * dnp.exp(-x) + 0.5


EXPECTED = {f: np.tanh(np.sin(X) * 1.5 + X), g: np.cos(X) * np.exp(-X) + 0.5}


def run_and_check(fn=f) -> None:
    """A new jit of ``fn`` through the numba executor gives NumPy's values."""
    np.testing.assert_allclose(dp.jit(fn, executor="numba")(X), EXPECTED[fn], rtol=1e-13)


def cache_hits() -> int:
    return sum(k.stats.cache_hits.get(sig, 0)
               for k in cache._loaded.values() for sig in k.signatures)


def cache_warnings(record: list) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, cache.KernelCacheWarning)]


def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if not p.is_dir()) if root.exists() else []


@pytest.fixture
def root(monkeypatch, tmp_path):
    """A cache root that does not exist yet, and a process that has loaded no kernel."""
    path = tmp_path / "cache"
    monkeypatch.setenv("DIFFPROG_CACHE_DIR", str(path))
    cache.reset()
    yield path
    cache.reset()
    for p in [path, *path.rglob("*")] if path.exists() else []:
        if p.is_dir() and not p.is_symlink():
            p.chmod(0o700)  # so that tmp_path can be removed


@pytest.fixture(scope="module")
def populated(tmp_path_factory):
    """A cache filled by compiling ``f``: its files' names and contents."""
    path = tmp_path_factory.mktemp("populated") / "cache"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DIFFPROG_CACHE_DIR", str(path))
        cache.reset()
        run_and_check(f)
        cache.reset()
    contents = {p.relative_to(path): p.read_bytes() for p in files(path)}
    assert any(p.suffix == ".py" for p in contents) and any(p.suffix == ".nbi" for p in contents)
    return path, contents


def private_dirs(root: Path, *subdirs: str) -> None:
    for d in (root, *(root / s for s in subdirs)):
        d.mkdir(exist_ok=True)
        d.chmod(0o700)


def plant(root: Path, relative: Path, data: bytes) -> Path:
    private_dirs(root, "kernels", "kernels/__pycache__")
    path = root / relative
    path.write_bytes(data)
    path.chmod(0o600)
    return path


@pytest.mark.slow
def test_cache_is_created_private_whatever_the_umask(root):
    old = os.umask(0)
    try:
        run_and_check(f)
    finally:
        os.umask(old)
    dirs = [root, root / "kernels", root / "kernels" / "__pycache__"]
    assert [oct(stat.S_IMODE(d.stat().st_mode)) for d in dirs] == ["0o700"] * 3
    written = files(root)
    assert {p.suffix for p in written} == {".py", ".nbi", ".nbc"}
    for p in written:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
        assert p.stat().st_size > 0


@pytest.mark.slow
def test_a_planted_kernel_source_for_the_right_key_is_never_executed(root, populated, tmp_path):
    _, contents = populated
    marker = tmp_path / "planted code ran"
    hostile = f"open({str(marker)!r}, 'w').close()\nraise SystemExit('planted')\n".encode()
    sources = [p for p in contents if p.suffix == ".py"]
    for p in sources:
        plant(root, p, hostile)
    run_and_check(f)
    assert not marker.exists()
    for p in sources:  # replaced by the generated source
        assert (root / p).read_bytes() == contents[p]


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_a_damaged_kernel_source_is_rewritten(root, populated, damage):
    _, contents = populated
    sources = [p for p in contents if p.suffix == ".py"]
    for p in sources:
        good = contents[p]
        plant(root, p, {"empty": b"", "truncated": good[: len(good) // 2],
                        "garbage": os.urandom(len(good))}[damage])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        run_and_check(f)
    assert not cache_warnings(record)
    for p in sources:
        assert (root / p).read_bytes() == contents[p]


class _Hostile:
    """Unpickling this creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".nbi", ".nbc"])
@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage", "hostile pickle"])
def test_damaged_numba_cache_files_are_deleted_and_rebuilt(root, populated, tmp_path, suffix,
                                                           damage):
    source, contents = populated
    shutil.copytree(source, root)
    marker = tmp_path / "unpickled"
    for p, good in contents.items():
        if p.suffix == suffix:
            (root / p).write_bytes({
                "empty": b"", "truncated": good[: len(good) // 2],
                "garbage": os.urandom(len(good)),
                "hostile pickle": pickle.dumps(_Hostile(marker))}[damage])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        run_and_check(f)  # the damaged entry is not loaded: compiled again
    assert not cache_warnings(record)
    assert cache_hits() == 0
    assert not marker.exists()
    cache.reset()  # a new process, in effect: loads what the repair wrote
    run_and_check(f)
    assert cache_hits() >= 1
    assert {p.relative_to(root) for p in files(root)} == set(contents)


@pytest.mark.parametrize("where,mode", [("", 0o757), ("", 0o770), ("kernels", 0o707),
                                        ("kernels/__pycache__", 0o777)],
                         ids=["root-757", "root-770", "kernels-707", "pycache-777"])
@pytest.mark.slow
def test_a_directory_writable_by_others_is_refused_with_one_warning(root, where, mode):
    private_dirs(root, "kernels", "kernels/__pycache__")
    (root / where).chmod(mode)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        run_and_check(f)
        run_and_check(g)  # a second kernel: no second warning
    [message] = cache_warnings(record)
    assert str(root / where).rstrip("/") in message and "writable by group or others" in message
    assert "chmod 700" in message
    assert files(root) == []  # nothing written, nothing read


@pytest.mark.slow
def test_a_cache_owned_by_someone_else_is_refused_with_one_warning(root, monkeypatch):
    private_dirs(root, "kernels", "kernels/__pycache__")
    monkeypatch.setattr(cache, "_current_uid", lambda: os.geteuid() + 1)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        run_and_check(f)
        run_and_check(g)
    [message] = cache_warnings(record)
    assert str(root) in message and "user id" in message
    assert files(root) == []


@pytest.mark.slow
@pytest.mark.parametrize("where", ["kernels", "kernels/__pycache__"])
def test_a_symbolic_link_in_the_cache_is_refused(root, tmp_path, where):
    private_dirs(root, *(["kernels"] if where != "kernels" else []))
    elsewhere = tmp_path / "elsewhere"
    private_dirs(elsewhere)
    (root / where).symlink_to(elsewhere, target_is_directory=True)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        run_and_check(f)
    [message] = cache_warnings(record)
    assert str(root / where) in message and "symbolic link" in message
    assert files(elsewhere) == []


@pytest.mark.slow
def test_a_read_only_cache_falls_back_with_one_warning(root):
    private_dirs(root)
    root.chmod(0o500)  # refused by its mode, also when the tests run as root
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        run_and_check(f)
        run_and_check(g)
    [message] = cache_warnings(record)
    assert str(root) in message and "read-only" in message
    root.chmod(0o700)
    assert files(root) == []


@pytest.mark.slow
@pytest.mark.parametrize("below", [False, True])
def test_an_unusable_cache_path_falls_back_with_one_warning(root, monkeypatch, below):
    root.write_text("a file where the cache directory should be")
    path = root / "sub" if below else root
    monkeypatch.setenv("DIFFPROG_CACHE_DIR", str(path))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        run_and_check(f)
        run_and_check(g)
    [message] = cache_warnings(record)
    assert str(path) in message
    assert root.read_text() == "a file where the cache directory should be"


@pytest.mark.slow
@pytest.mark.parametrize("failing", [".py", ".nbi", ".nbc"])
def test_a_full_disk_falls_back_with_one_warning_and_leaves_no_partial_files(root, monkeypatch,
                                                                             failing):
    write_all = cache._write_all

    def full_disk(fd: int, data: bytes, path: Path) -> None:
        if path.suffix == failing:
            write_all(fd, data[: len(data) // 2], path)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        write_all(fd, data, path)

    monkeypatch.setattr(cache, "_write_all", full_disk)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        run_and_check(f)
        run_and_check(g)
    [message] = cache_warnings(record)
    assert "No space left on device" in message
    left = files(root)
    assert all(p.suffix == ".py" for p in left)  # the sources written before the failure
    assert len(left) == (0 if failing == ".py" else 1)
    assert all(p.stat().st_size > 0 for p in left)


def test_the_warm_path_does_not_touch_the_disk(root, monkeypatch):
    source = "import numba\n\n\n@numba.njit(cache=True)\ndef kernel(x):\n    return x * 3\n"
    kernel = cache.load(source)
    assert kernel(14) == 42  # numba compiles (and caches) on the first call

    def fail(*args):
        raise AssertionError("the cache was consulted for a loaded kernel")

    monkeypatch.setattr(cache, "_kernel_dir", fail)
    monkeypatch.setattr(cache, "_compile_kernel", fail)
    assert cache.load(source) is kernel and kernel(14) == 42


_PROCESS = """
import numpy as np, diffprog as dp, diffprog.numpy as dnp
from diffprog.kernels import cache
f = dp.jit(lambda x: dnp.arctan(dnp.cos(x) * 0.75 - x * x), executor="numba")
print(repr(f(np.linspace(0.0, 1.0, 9)).tolist()))
print(sum(k.stats.cache_hits.get(s, 0) for k in cache._loaded.values() for s in k.signatures))
"""


@pytest.mark.slow
def test_processes_share_a_fresh_cache_safely_and_load_from_it(root):
    env = dict(os.environ, DIFFPROG_CACHE_DIR=str(root))
    x = np.linspace(0.0, 1.0, 9)
    want = np.arctan(np.cos(x) * 0.75 - x * x)

    def start() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", _PROCESS], env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def result(p: subprocess.Popen) -> tuple[list, int]:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert "KernelCacheWarning" not in err, err
        values, hits = out.split("\n")[:2]
        return eval(values), int(hits)

    both = [start(), start()]  # compile the same new kernel at the same time
    for values, _ in map(result, both):
        np.testing.assert_allclose(values, want, rtol=1e-13)
    written = files(root)
    assert not [p for p in written if ".tmp" in p.name]
    assert all(p.stat().st_size > 0 and stat.S_IMODE(p.stat().st_mode) == 0o600
               for p in written)
    values, hits = result(start())
    np.testing.assert_allclose(values, want, rtol=1e-13)
    assert hits >= 1  # loaded from the disk cache, not compiled
