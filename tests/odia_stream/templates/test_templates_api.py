"""The templates package's public API is explicit (its docstring examples run in tests/test_doctests.py)."""

from __future__ import annotations

import importlib


def test_public_api_is_explicit() -> None:
    package = importlib.import_module("odia_stream.templates")
    assert sorted(package.__all__) == sorted(set(package.__all__))
    for name in package.__all__:
        assert getattr(package, name) is not None
