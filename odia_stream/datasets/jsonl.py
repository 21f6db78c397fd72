"""JSON Lines of ``FCLogEvent`` (one JSON object per line; ``.jsonl`` or ``.jsonl.gz``).

Blank lines are ignored. A line that is not UTF-8, not JSON or not a valid event raises
:class:`~odia_stream.datasets.base.DatasetError` (``path``, ``line_no``, ``reason``) in strict
mode; in lenient mode it is counted in ``stats.skipped`` and logged as a warning.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from pydantic import ValidationError

from odia_stream.datasets.base import DatasetError, ReadStats
from schemas import FCLogEvent

__all__ = ["is_jsonl_path", "read_jsonl", "write_jsonl"]

log = logging.getLogger(__name__)


def is_jsonl_path(path: Path) -> bool:
    """True for a ``.jsonl`` / ``.jsonl.gz`` / ``.ndjson`` file name."""
    name = Path(path).name.lower()
    return name.endswith((".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz"))


def _open(path: Path, mode: str) -> IO[bytes]:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, mode)  # type: ignore[return-value]
    return path.open(mode)


def _reason(exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first.get("loc", ())) or "<event>"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"invalid event: {loc}: {first.get('msg')}{more}"


def read_jsonl(path: Path, *, strict: bool = True, stats: ReadStats | None = None) -> Iterator[FCLogEvent]:
    """Yield the events of a JSONL file in line order."""
    path = Path(path)
    stats = stats if stats is not None else ReadStats()
    try:
        handle = _open(path, "rb")
    except OSError as exc:
        raise DatasetError(path, None, f"cannot open: {exc}") from exc
    with handle:
        for line_no, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
                obj = json.loads(text)
                if not isinstance(obj, dict):
                    raise ValueError(f"line holds a JSON {type(obj).__name__}, not an object")
                event = FCLogEvent.model_validate(obj)
            except UnicodeDecodeError as exc:
                reason = f"not UTF-8: {exc.reason} at byte {exc.start}"
            except json.JSONDecodeError as exc:
                reason = f"not JSON: {exc.msg} (column {exc.colno})"
            except ValidationError as exc:
                reason = _reason(exc)
            except ValueError as exc:
                reason = str(exc)
            else:
                stats.records += 1
                stats.per_file[path.name] += 1
                yield event
                continue
            stats.skip_or_raise(DatasetError(path, line_no, reason), strict=strict, log=log)


def write_jsonl(events: Iterable[FCLogEvent], path: Path) -> int:
    """Write events as JSON Lines (gzip when the name ends in ``.gz``); return how many."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with _open(path, "wb") as handle:
        for event in events:
            handle.write(event.model_dump_json().encode("utf-8") + b"\n")
            n += 1
    return n
