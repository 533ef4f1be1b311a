# Each target creates .venv when it is missing and installs the package into it.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-test

# The oldest versions pyproject.toml allows; `make test-floor` runs the fast tests with them.
# (scipy: the optional diffprog.scipy and its tests.)
FLOOR_VENV := .venv-floor
FLOOR_PY   := $(FLOOR_VENV)/bin/python
FLOOR_PINS := numpy==2.2.0 numba==0.61.2 scipy==1.16.0
FLOOR_STAMP := $(FLOOR_VENV)/.installed-floor

# setuptools prints a warning box on every editable install, that a folder named like the package
# in the working directory could shadow it; here that folder is the package itself.
EDITABLE := PYTHONWARNINGS="ignore:Editable installation:Warning"

.PHONY: demo test test-fast test-floor lint bench venv clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# (dask: the optional diffprog.distributed, whose tests `make test` runs)
$(STAMP): $(PY) pyproject.toml
	$(EDITABLE) $(PY) -m pip install --quiet -e '.[test,dev,dask]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) examples/tour.py

# Everything, slow tests included (~2 min with a warm kernel cache).
test: $(STAMP)
	$(PY) -m pytest tests

# What to run while editing: the tests not marked slow or dask (under a minute).
test-fast: $(STAMP)
	$(PY) -m pytest tests -m "not slow and not dask"

# The fast tests against the floor versions, in a venv of their own. The package is installed
# without its dependencies so that pip cannot upgrade the pins.
$(FLOOR_STAMP): pyproject.toml Makefile
	test -x $(FLOOR_PY) || $(PYTHON) -m venv $(FLOOR_VENV)
	$(FLOOR_PY) -m pip install --quiet --upgrade pip
	$(FLOOR_PY) -m pip install --quiet $(FLOOR_PINS) 'pytest>=7' 'hypothesis>=6'
	$(EDITABLE) $(FLOOR_PY) -m pip install --quiet --no-deps -e .
	touch $(FLOOR_STAMP)

test-floor: $(FLOOR_STAMP)
	$(FLOOR_PY) -c 'import numpy, numba; print("floor: numpy", numpy.__version__, "numba", numba.__version__)'
	$(FLOOR_PY) -m pytest tests -m "not slow and not dask"

lint: $(STAMP)
	$(PY) -m ruff check diffprog tests benchmarks examples

# The bench extra holds the peers (autograd, jax, torch==2.13.0 CPU, optree) and matplotlib;
# if the extra fails as a whole, its packages are installed one by one and the runner leaves out
# whatever does not import. OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE slow NumPy badly on some
# machines, so the benchmark run unsets both. `make bench BENCH_ARGS=--quick` for a smoke run.
bench: $(STAMP)
	$(EDITABLE) $(PY) -m pip install --quiet -e '.[test,bench]' || $(PY) benchmarks/install_peers.py
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(FLOOR_VENV) build *.egg-info
