"""The disk cache of diffprog's own numba functions (cache.package_jit: fastmath, the interpreter's
kernel): the package's __pycache__ only when it is safe, else diffprog's private cache, else
memory; numba's user-wide cache never; stale temporary files swept; forget() drops a kernel.

Fast tests use a small module written to a temporary package folder; the subprocess tests use
the real interpreter kernel from a warm cache."""

from __future__ import annotations

import gc
import hashlib
import linecache
import os
import pickle
import shutil
import stat
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from diffprog.kernels import cache

numba = pytest.importorskip("numba")
from numba.core import caching, config  # noqa: E402

MODULE = """from diffprog.kernels import cache


@cache.package_jit(error_model="numpy")
def cube(x):
    return x * x * x + {k}
"""
DECORATOR_LINE = 4
# numba's names for the index and data files of ``cube``
BASE = f"mod.cube-{DECORATOR_LINE}.py{sys.version_info[0]}{sys.version_info[1]}{sys.abiflags}"
NUMBA_FILES = {f"{BASE}.nbi", f"{BASE}.1.nbc"}


class _Hostile:
    """Unpickling this creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


class Package:
    """A package folder holding mod.py, and a cache root that does not exist yet."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path / "pkg"
        self.dir.mkdir(mode=0o755)
        self.dir.chmod(0o755)
        self.file = self.dir / "mod.py"
        self.file.write_text(MODULE.format(k=0))
        self.pycache = self.dir / "__pycache__"
        self.root = tmp_path / "cache"

    def load(self):
        """A new ``cube`` dispatcher (as in a new process): compiled or loaded from disk."""
        namespace = {"__name__": "diffprog_test_pkg_mod"}
        exec(compile(self.file.read_text(), str(self.file), "exec"), namespace)
        return namespace["cube"]

    def private(self) -> Path:
        key = hashlib.sha256(str(self.dir).encode()).hexdigest()[:16]
        return self.root / "package" / f"pkg_{key}"


@pytest.fixture
def pkg(tmp_path, monkeypatch):
    package = Package(tmp_path)
    monkeypatch.setenv("DIFFPROG_CACHE_DIR", str(package.root))
    cache.reset()
    yield package
    cache.reset()
    for p in [tmp_path, *tmp_path.rglob("*")]:
        if p.is_dir() and not p.is_symlink():
            p.chmod(0o700)  # so that tmp_path can be removed


def hits(fn) -> int:
    return sum(fn.stats.cache_hits.values())


def names(folder: Path) -> set[str]:
    return set(os.listdir(folder)) if folder.exists() else set()


def checksummed(path: Path) -> bool:
    data = path.read_bytes()
    payload = data[:-cache._TRAILER]
    return (data.endswith(cache._TAG)
            and hashlib.sha256(payload).digest() == data[-cache._TRAILER:-len(cache._TAG)])


def plant(folder: Path, marker: Path) -> None:
    """Hostile pickles under the names numba would read for ``cube`` in ``folder``."""
    folder.mkdir(exist_ok=True)
    for name in NUMBA_FILES:
        (folder / name).write_bytes(pickle.dumps(_Hostile(marker)))


def cache_warnings(record: list) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, cache.KernelCacheWarning)]


def test_the_package_pycache_is_used_and_a_new_process_loads_from_it(pkg):
    cube = pkg.load()
    assert cube(2.0) == 8.0 and hits(cube) == 0
    assert names(pkg.pycache) == NUMBA_FILES  # numba's names, as planted by the tests below
    for name in NUMBA_FILES:
        path = pkg.pycache / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and checksummed(path)
    assert not pkg.root.exists()  # the private cache is not needed
    cache.reset()
    cube = pkg.load()
    assert cube(3.0) == 27.0 and hits(cube) == 1


def test_a_missing_package_pycache_is_created_private(pkg):
    old = os.umask(0)
    try:
        assert pkg.load()(2.0) == 8.0
    finally:
        os.umask(old)
    assert stat.S_IMODE(pkg.pycache.lstat().st_mode) == 0o700
    assert names(pkg.pycache) == NUMBA_FILES


def _someone_elses(monkeypatch, path: Path) -> None:
    """``path`` appears owned by user id 4242 (we are the user, or root: both trusted)."""
    real = os.lstat

    def lstat(p, *args, **kwargs):
        st = real(p, *args, **kwargs)
        if os.fspath(p) == str(path):
            fields = list(st[:10])
            fields[4] = 4242
            return os.stat_result(fields)
        return st

    monkeypatch.setattr(os, "lstat", lstat)


@pytest.mark.parametrize("unsafe", ["writable by others", "writable by group", "symbolic link",
                                    "someone else's", "package writable by others"])
def test_an_unsafe_package_pycache_is_not_used(pkg, tmp_path, monkeypatch, unsafe):
    marker = tmp_path / "unpickled"
    target = pkg.pycache
    if unsafe == "symbolic link":
        target = tmp_path / "elsewhere"
        target.mkdir(mode=0o700)
        pkg.pycache.symlink_to(target)
    plant(target, marker)
    if unsafe == "writable by others":
        pkg.pycache.chmod(0o777)
    elif unsafe == "writable by group":
        pkg.pycache.chmod(0o770)
    elif unsafe == "someone else's":
        pkg.pycache.chmod(0o755)
        _someone_elses(monkeypatch, pkg.pycache)
    elif unsafe == "package writable by others":
        pkg.pycache.chmod(0o755)
        pkg.dir.chmod(0o777)
    planted = {p: p.read_bytes() for p in target.iterdir()}
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        cube = pkg.load()
        assert cube(2.0) == 8.0 and hits(cube) == 0
        assert not marker.exists()
        assert {p: p.read_bytes() for p in target.iterdir()} == planted  # untouched
        assert names(pkg.private()) == NUMBA_FILES  # cached privately instead
        assert all(checksummed(pkg.private() / n) for n in NUMBA_FILES)
        cache.reset()
        cube = pkg.load()
        assert cube(3.0) == 27.0 and hits(cube) == 1  # from the private cache
    assert not marker.exists()
    assert not cache_warnings(record)


def _installed(pkg) -> None:
    """Fill the package's __pycache__ as an installer running numba would (numba's own files,
    no checksum), as root; from then on we are user 4242, who cannot write there."""
    cube = pkg.load()
    assert cube(2.0) == 8.0
    for name in names(pkg.pycache):
        os.unlink(pkg.pycache / name)
    args = cube.signatures[0]  # as numba's dispatcher passes it to its cache
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(config, "CACHE_DIR", "")  # numba's own in-tree locator
        numba_cache = caching.FunctionCache(cube.py_func)
        assert numba_cache.cache_path == str(pkg.pycache)
        numba_cache.save_overload(args, cube.overloads[args])
    assert names(pkg.pycache) == NUMBA_FILES
    assert not any(checksummed(pkg.pycache / n) for n in NUMBA_FILES)
    pkg.pycache.chmod(0o755)
    for name in NUMBA_FILES:
        (pkg.pycache / name).chmod(0o644)
    cache.reset()


def test_a_root_installation_is_read_and_not_written(pkg, monkeypatch):
    _installed(pkg)
    monkeypatch.setattr(cache, "_current_uid", lambda: 4242)
    listing = {p: p.read_bytes() for p in pkg.pycache.iterdir()}
    cube = pkg.load()
    assert cube(3.0) == 27.0 and hits(cube) == 1  # numba's own files, root's: read
    assert {p: p.read_bytes() for p in pkg.pycache.iterdir()} == listing
    assert not pkg.root.exists()


@pytest.mark.slow
def test_a_root_installations_file_writable_by_group_is_not_read(pkg, monkeypatch):
    _installed(pkg)
    index = pkg.pycache / f"{BASE}.nbi"
    index.chmod(0o664)
    monkeypatch.setattr(cache, "_current_uid", lambda: 4242)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        cube = pkg.load()
        assert cube(3.0) == 27.0 and hits(cube) == 0  # compiled
    # we are "4242" but the private folder we create is root's: refused, compiled in memory
    assert len(cache_warnings(record)) == 1


@pytest.mark.slow
def test_with_no_safe_place_functions_compile_in_memory_with_one_warning(pkg, tmp_path):
    marker = tmp_path / "unpickled"
    plant(pkg.pycache, marker)
    pkg.pycache.chmod(0o777)
    pkg.root.mkdir(mode=0o777)
    pkg.root.chmod(0o777)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for k in range(3):
            if k == 2:
                cache.reset()  # a new process warns again
            cube = pkg.load()
            assert cube(2.0) == 8.0 and hits(cube) == 0
    messages = cache_warnings(record)
    assert len(messages) == 2 and str(pkg.root) in messages[0]
    assert not marker.exists()
    assert names(pkg.pycache) == NUMBA_FILES and names(pkg.root) == set()


@pytest.mark.parametrize("tree", ["safe", "unsafe"])
def test_numbas_user_wide_cache_is_never_read(pkg, tmp_path, monkeypatch, tree):
    marker = tmp_path / "unpickled"
    monkeypatch.setattr(config, "CACHE_DIR", str(tmp_path / "numba-cache"))  # NUMBA_CACHE_DIR
    if tree == "unsafe":
        pkg.pycache.mkdir(mode=0o777)
        pkg.pycache.chmod(0o777)
    cube = pkg.load()
    # where numba's own cache (first of its locators: NUMBA_CACHE_DIR) reads ``cube``'s index
    numba_cache = caching.FunctionCache(cube.py_func)
    user_wide = Path(numba_cache.cache_path)
    assert user_wide.is_relative_to(tmp_path / "numba-cache")
    plant(user_wide, marker)
    assert cube(2.0) == 8.0 and hits(cube) == 0
    assert not marker.exists()
    cache.reset()
    cube = pkg.load()
    assert cube(3.0) == 27.0 and hits(cube) == 1 and not marker.exists()
    # the control: numba's own cache unpickles the planted index
    numba_cache.load_overload(cube.signatures[0], cube.targetctx)
    assert marker.exists()


def test_a_function_outside_a_file_is_compiled_in_memory(pkg):
    namespace = {"cache": cache}
    exec(compile("@cache.package_jit()\ndef twice(x):\n    return 2 * x\n", "<stdin>", "exec"),
         namespace)
    twice = namespace["twice"]
    assert twice(21) == 42
    assert isinstance(twice._cache, caching.NullCache)
    with pytest.raises(TypeError, match="cache="):
        cache.package_jit(cache=True)


# ----------------------------------------------------------------------------------------------
# Stale temporary files


def test_temporary_files_of_killed_writers_are_swept_when_a_folder_is_opened(pkg):
    kernels = pkg.root / "kernels"
    for d in (pkg.root, kernels, kernels / "__pycache__", pkg.pycache):
        d.mkdir(mode=0o700)
    private = cache._package_dir(pkg.root, str(pkg.file))
    cache.reset()  # not yet swept in "this process"
    old = time.time() - 2 * cache._STALE_SECONDS
    stale = [kernels / ".k_0123.py.0123456789ab.tmp",
             kernels / "__pycache__" / ".k_0123.kernel-3.py311.nbi.a1b2c3d4e5f6.tmp",
             private / f".{BASE}.1.nbc.00ff00ff00ff.tmp",
             pkg.pycache / f"{BASE}.nbi.tmp.0123456789abcdef"]  # numba's own writer's
    kept = [kernels / ".k_0123.py.fedcba987654.tmp",  # recent: maybe being written
            kernels / "k_0123.py", kernels / "__pycache__" / "notes.tmp",
            private / f"{BASE}.nbi", pkg.pycache / ".mod.py.0123456789ab.tmp.bak"]
    for i, p in enumerate(stale + kept):
        p.write_bytes(b"x")
        if i != len(stale):
            os.utime(p, (old, old))
    folder = kernels / "__pycache__" / ".dir.0123456789ab.tmp"
    folder.mkdir()
    os.utime(folder, (old, old))
    assert cache.kernel_dir() == kernels
    assert cache._package_dir(pkg.root, str(pkg.file)) == private
    assert cache._in_tree(str(pkg.file)) is not None
    assert [p for p in stale if p.exists()] == []
    assert [p for p in kept if not p.exists()] == [] and folder.is_dir()


# ----------------------------------------------------------------------------------------------
# forget


SOURCE = "import numba\n\n\n@numba.njit(cache=True)\ndef kernel(x):\n    return x * 7\n"
DIGEST = hashlib.sha256(SOURCE.encode()).hexdigest()[:20]


@pytest.mark.parametrize("where", ["disk", "memory"])
def test_forget_drops_a_kernel_and_its_source_lines(pkg, where):
    if where == "memory":
        pkg.root.mkdir(mode=0o777)
        pkg.root.chmod(0o777)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        kernel = cache.load(SOURCE)
    assert kernel(6) == 42 and len(cache_warnings(record)) == (where == "memory")
    filename = kernel.py_func.__code__.co_filename
    assert linecache.getline(filename, 6).strip() == "return x * 7"  # as a traceback shows
    assert filename in linecache.cache and DIGEST in cache._loaded
    cache.forget(DIGEST)
    assert filename not in linecache.cache
    assert DIGEST not in cache._loaded and f"diffprog_kernel_{DIGEST}" not in sys.modules
    cache.forget(DIGEST)  # twice: nothing left to drop
    again = cache.load(SOURCE)
    assert again is not kernel and again(6) == 42


# ----------------------------------------------------------------------------------------------
# The interpreter's kernel, in new processes


_PROCESS = """
import sys
from pathlib import Path

import numpy as np

from diffprog.kernels import cache

if len(sys.argv) > 1:  # the package's __pycache__ is replaced by this folder
    cache._package_pycache = lambda py_file: Path(sys.argv[1])

import diffprog.numpy as dnp
from diffprog.jit import trace_graph
from diffprog.kernels import _interp_kernel, interp
from diffprog.kernels.steps import sequence

def f(x):
    return dnp.tanh(dnp.sin(x) * 1.5 + x) * dnp.exp(-x)

x = np.linspace(-2.0, 2.0, 11)
graph = trace_graph(f, (x,))
steps, n_interp = interp.interp_steps(graph)
assert n_interp >= 1
print(repr(np.asarray(sequence(graph, steps)([x])[0]).tolist()))
print(sum(_interp_kernel.interp.stats.cache_hits.values()))
# fastmath's functions are inlined in the loaded interpreter: load one (from Python) too
from diffprog.kernels import fastmath
assert abs(fastmath.exp(0.5) - np.exp(0.5)) <= 2e-16
print(sum(fastmath._exp.stats.cache_hits.values()))
"""
X = np.linspace(-2.0, 2.0, 11)
WANT = np.tanh(np.sin(X) * 1.5 + X) * np.exp(-X)


def run_interp(env: dict, *args: str) -> int:
    """Run the interpreter and fastmath.exp in a new process: check the interpreter's values,
    return the cache hits of both (2: both loaded from the disk cache)."""
    done = subprocess.run([sys.executable, "-c", _PROCESS, *args], env=env, text=True,
                          capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "KernelCacheWarning" not in done.stderr, done.stderr
    values, interp_hits, exp_hits = done.stdout.split("\n")[:3]
    np.testing.assert_allclose(eval(values), WANT, rtol=1e-14)
    return int(interp_hits) + int(exp_hits)


def package_functions() -> list:
    from numba.core.registry import CPUDispatcher

    from diffprog.kernels import _interp_kernel, fastmath
    ours = cache._numba_classes().PackageCache
    found = [v for v in vars(fastmath).values()
             if isinstance(v, CPUDispatcher) and isinstance(v._cache, ours)]
    assert len(found) >= 10  # exp, expm1, log, log1p, tanh, sigmoid, sin, cos, sincos, ...
    return [_interp_kernel.interp, *found]


@pytest.fixture(scope="module")
def warm_tree(tmp_path_factory):
    """The package's __pycache__ holds the interpreter kernel (compiled now if it did not:
    once per installation); an environment with a fresh private cache root."""
    env = dict(os.environ, DIFFPROG_CACHE_DIR=str(tmp_path_factory.mktemp("c") / "cache"))
    run_interp(env)
    return env


@pytest.mark.slow
def test_the_interpreter_kernel_is_cached_once_per_installation(warm_tree):
    assert run_interp(warm_tree) == 2  # loaded, not compiled


@pytest.mark.slow
@pytest.mark.parametrize("tree", ["trusted", "writable by others"])
def test_the_interpreter_never_reads_numbas_user_wide_cache(warm_tree, tmp_path, monkeypatch,
                                                            tree):
    """Hostile pickles where numba's own cache would read every package function's index and
    data (NUMBA_CACHE_DIR, and the per-user folder under XDG_CACHE_HOME) are never read."""
    marker = tmp_path / "unpickled"
    numba_dir, xdg = tmp_path / "numba", tmp_path / "xdg"
    env = dict(warm_tree, NUMBA_CACHE_DIR=str(numba_dir), XDG_CACHE_HOME=str(xdg))
    args = []
    if tree != "trusted":
        bad = tmp_path / "pycache"
        bad.mkdir(mode=0o777)
        bad.chmod(0o777)
        args = [str(bad)]
        # a warm private cache: the installation's checksummed files, copied
        env["DIFFPROG_CACHE_DIR"] = str(tmp_path / "cache")
        monkeypatch.setenv("DIFFPROG_CACHE_DIR", env["DIFFPROG_CACHE_DIR"])
        functions = package_functions()
        private = cache._package_dir(cache.cache_root(), functions[0].py_func.__code__.co_filename)
        tree_dir = cache._package_pycache(functions[0].py_func.__code__.co_filename)
        for p in tree_dir.iterdir():
            if p.name.startswith(("_interp_kernel.", "fastmath.")) and checksummed(p):
                shutil.copy(p, private / p.name)
    planted = []
    for fn in package_functions():
        with monkeypatch.context() as mp:
            for cache_dir in (str(numba_dir), ""):  # NUMBA_CACHE_DIR, then the per-user folder
                mp.setattr(config, "CACHE_DIR", cache_dir)
                mp.setenv("XDG_CACHE_HOME", str(xdg))
                mp.setattr(caching.InTreeCacheLocator, "from_function",
                           classmethod(lambda cls, f, p: None))
                numba_cache = caching.FunctionCache(fn.py_func)
                assert Path(numba_cache.cache_path).is_relative_to(tmp_path)
                index = Path(numba_cache._cache_file._index_path)
                index.write_bytes(pickle.dumps(_Hostile(marker)))
                index.with_name(index.name[:-len(".nbi")] + ".1.nbc").write_bytes(
                    pickle.dumps(_Hostile(marker)))
                planted.append(index)
    assert len(planted) == 2 * len(package_functions())
    assert run_interp(env, *args) == 2  # loaded from the installation or the private cache
    assert not marker.exists()
    if args:
        assert os.listdir(args[0]) == []


@pytest.mark.slow
def test_kernels_dropped_by_the_fused_kernel_cache_are_forgotten(pkg, monkeypatch):
    import diffprog as dp
    import diffprog.numpy as dnp
    from diffprog.kernels import fuse

    pkg.root.mkdir(mode=0o777)  # refused: kernels in memory, their source in linecache
    pkg.root.chmod(0o777)
    monkeypatch.setattr(dp.config, "kernel_cache_size", 2)
    x = np.linspace(-1.0, 1.0, 5)

    def in_memory() -> set[str]:
        # (relative to what earlier tests of the process left: only this test's kernels count)
        return {name for name in linecache.cache
                if name.startswith("<diffprog kernel k_")} - earlier

    earlier: set[str] = set()
    earlier = in_memory()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cache.KernelCacheWarning)
        for k in range(2, 6):  # four different kernels
            def f(x, k=k, np=dnp):
                for i in range(k):
                    x = np.sin(x) + float(i) if i % 2 else np.tanh(x) * 1.5
                return x

            np.testing.assert_allclose(dp.jit(f, executor="numba")(x), f(x, np=np), rtol=1e-14)
            gc.collect()  # the dropped program (cycles hold it until a collection) lets go
            assert len(in_memory()) == min(k - 1, 2)
    assert len(fuse._loaded) == 2
    assert in_memory() == {f"<diffprog kernel k_{d}>" for d in fuse._loaded}
    assert {m for m in sys.modules if m.startswith("diffprog_kernel_")} == {
        f"diffprog_kernel_{d}" for d in fuse._loaded}
