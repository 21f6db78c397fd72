"""The usage examples in the module docstrings stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["__init__", "text", "io", "dictionary", "matcher", "templater", "learning", "bench"]


@pytest.mark.parametrize("name", MODULES)
def test_module_docstring_examples(name: str) -> None:
    module = importlib.import_module("odia_stream.templates" + ("" if name == "__init__" else f".{name}"))
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_public_api_is_explicit() -> None:
    package = importlib.import_module("odia_stream.templates")
    assert sorted(package.__all__) == sorted(set(package.__all__))
    for name in package.__all__:
        assert getattr(package, name) is not None
