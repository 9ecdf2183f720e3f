"""Every docstring example in the fgrad package runs and prints what it shows.

Modules also test their own examples next to their other tests; this sweep makes sure a
module without such a test (``fgrad._src.numpy.linalg``, ``fgrad._src.lru``, ...) is
never skipped.
"""

import doctest
import importlib
import pkgutil
import warnings

import pytest

import fgrad

MODULES = sorted(info.name for info in pkgutil.walk_packages(fgrad.__path__, "fgrad.")
                 if not info.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nan examples, as NumPy warns
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"


def test_the_sweep_finds_the_examples():
    assert len(MODULES) > 80 and "fgrad._src.numpy.linalg" in MODULES
