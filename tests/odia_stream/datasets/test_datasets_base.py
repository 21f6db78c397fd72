"""What the dataset readers share: strict/lenient handling of a bad record, and the docstring examples."""

from __future__ import annotations

import doctest
import logging

import pytest

from odia_stream.datasets import base
from odia_stream.datasets.base import DatasetError, ReadStats

log = logging.getLogger(__name__)


def test_strict_raises_the_error_from_its_cause() -> None:
    stats = ReadStats()
    cause = ValueError("bad value")
    with pytest.raises(DatasetError, match=r"^f\.json: record 2: bad value$") as err:
        error = DatasetError("f.json", None, "record 2: bad value")
        stats.skip_or_raise(error, strict=True, log=log, cause=cause)
    assert err.value.__cause__ is cause and err.value.line_no is None
    assert stats.skipped == 0 and stats.problems == []


def test_lenient_counts_notes_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    stats = ReadStats()
    with caplog.at_level(logging.WARNING, logger=__name__):
        for line_no in range(1, 4):
            stats.skip_or_raise(DatasetError("a.jsonl", line_no, "not JSON"), strict=False, log=log)
    assert stats.skipped == 3
    assert stats.problems == [f"a.jsonl:{n}: not JSON" for n in range(1, 4)]
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [f"skipping a.jsonl:{n}: not JSON" for n in range(1, 4)]


def test_docstring_examples() -> None:
    assert doctest.testmod(base).failed == 0
