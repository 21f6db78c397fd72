"""Dataset events read once per session and shared by the dataset tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from odia_stream.datasets import ReadStats, read_hammerbench
from schemas import FCLogEvent


@pytest.fixture(scope="session")
def hb_zh_read(datasets_dir: Path) -> tuple[list[FCLogEvent], ReadStats]:
    """All zh HammerBench events and the reader's statistics."""
    stats = ReadStats()
    return list(read_hammerbench(datasets_dir / "hammerbench" / "zh", stats=stats)), stats


@pytest.fixture(scope="session")
def hb_en_events(datasets_dir: Path) -> list[FCLogEvent]:
    """All en HammerBench events."""
    return list(read_hammerbench(datasets_dir / "hammerbench" / "en"))
