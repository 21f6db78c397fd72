"""Every module of the project whose docstrings carry an example (``>>>``) has it run here, so a
documented call that stops working fails the build."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("schemas", "odia_stream", "kafka_runtime", "agents", "trainer", "serving", "odia")


def modules_with_examples() -> list[str]:
    """Dotted names of the project's modules whose source contains a doctest prompt."""
    names = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if ">>> " in path.read_text(encoding="utf-8"):
                parts = path.relative_to(ROOT).with_suffix("").parts
                names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_the_project_has_documented_examples() -> None:
    assert len(modules_with_examples()) >= 20


@pytest.mark.parametrize("name", modules_with_examples())
def test_module_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has '>>> ' in its source but no doctest was found"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed"
