"""Fixtures for the NER templating tests: real HammerBench records (read-only, never copied)."""

from __future__ import annotations

import glob
import json
import os
from typing import Any

import pytest

HAMMERBENCH_ZH = os.environ.get("ODIA_HAMMERBENCH_ZH", "/work/shared/datasets/hammerbench/zh")


@pytest.fixture(scope="session")
def hammerbench_zh() -> list[list[dict[str, Any]]]:
    """Message lists of every HammerBench zh record (skips when the data set is absent)."""
    files = sorted(glob.glob(os.path.join(HAMMERBENCH_ZH, "*.json")))
    if not files:
        pytest.skip(f"HammerBench zh not found under {HAMMERBENCH_ZH}")
    records: list[list[dict[str, Any]]] = []
    for path in files:
        with open(path, encoding="utf-8") as fh:
            records.extend(r["messages"] for r in json.load(fh))
    return records


@pytest.fixture(scope="session")
def hammerbench_zh_music(hammerbench_zh: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    """Records with at least one MusicRadio.* call."""
    return [
        m
        for m in hammerbench_zh
        if any(x.get("role") == "function call" and x["content"]["name"].startswith("MusicRadio.") for x in m)
    ]
