# Each target creates .venv when it is missing and installs the package into it.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-test

.PHONY: demo test bench venv clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet -e '.[test]' --config-settings editable_mode=compat
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) examples/tour.py

test: $(STAMP)
	$(PY) -m pytest tests

# The bench extra holds the peers (autograd, jax, torch==2.13.0 CPU, optree) and matplotlib;
# if the extra fails as a whole, its packages are installed one by one and the runner leaves out
# whatever does not import. OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE slow NumPy badly on some
# machines, so the benchmark run unsets both. `make bench BENCH_ARGS=--quick` for a smoke run.
bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,bench]' --config-settings editable_mode=compat || $(PY) benchmarks/install_peers.py
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(PY) -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
