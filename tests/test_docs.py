"""The examples in docstrings run and print what they say (doctest)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import diffprog

MODULES = sorted(m.name for m in pkgutil.walk_packages(diffprog.__path__, "diffprog."))


# diffprog.distributed needs the dask extra (marked so that test-floor, without it, leaves it out)
@pytest.mark.parametrize("name", ["diffprog"] + [
    pytest.param(m, marks=pytest.mark.dask) if m == "diffprog.distributed" else m for m in MODULES])
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest failures in {name}"
