"""One entry point for every dataset layout: :func:`load_dataset` detects the format by path."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from odia_stream.datasets.base import DatasetError, ReadStats
from odia_stream.datasets.hammerbench import LANGS, is_hammerbench_file, read_hammerbench
from odia_stream.datasets.jsonl import is_jsonl_path, read_jsonl
from odia_stream.datasets.snips import is_snips_dir, is_snips_file, read_snips
from odia_stream.datasets.synthetic_music import is_synthetic_spec, parse_synthetic_spec, read_synthetic
from schemas import FCLogEvent

__all__ = ["DatasetFormat", "detect_format", "load_dataset"]

DatasetFormat = Literal["hammerbench", "snips", "jsonl", "synthetic"]

_SUPPORTED = (
    "a HammerBench folder (with zh/ and/or en/), a HammerBench language folder or .json file, "
    "the SNIPS folder (train_<Intent>_full.json, validate_<Intent>.json) or one of its files, "
    "a .jsonl / .jsonl.gz file of FCLogEvent, or a folder of such files; "
    "or synthetic:music[:n=N,seed=S,...] (built-in synthetic traffic, no files)"
)


def _jsonl_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.is_file() and is_jsonl_path(f))


def detect_format(path: Path) -> DatasetFormat:
    """Which reader ``path`` needs; :class:`DatasetError` naming the supported layouts if none."""
    path = Path(path)
    if is_synthetic_spec(path):
        parse_synthetic_spec(path)  # an unknown name or option fails here
        return "synthetic"
    if not path.exists():
        raise DatasetError(path, None, "no such file or directory")
    if path.is_file():
        if is_jsonl_path(path):
            return "jsonl"
        if is_snips_file(path):
            return "snips"
        if is_hammerbench_file(path):
            return "hammerbench"
    elif path.is_dir():
        if any((path / lang).is_dir() and any((path / lang).glob("*.json")) for lang in LANGS):
            return "hammerbench"
        if is_snips_dir(path):
            return "snips"
        json_files = sorted(path.glob("*.json"))
        if json_files and is_hammerbench_file(json_files[0]):
            return "hammerbench"
        if _jsonl_files(path):
            return "jsonl"
    raise DatasetError(path, None, f"unknown dataset layout; expected {_SUPPORTED}")


def _read(
    path: Path, fmt: DatasetFormat, lang: str | None, strict: bool, stats: ReadStats
) -> Iterator[FCLogEvent]:
    if fmt == "hammerbench":
        yield from read_hammerbench(path, lang=lang, strict=strict, stats=stats)
    elif fmt == "snips":
        yield from read_snips(path, strict=strict, stats=stats)
    else:
        for file in [path] if path.is_file() else _jsonl_files(path):
            yield from read_jsonl(file, strict=strict, stats=stats)


def load_dataset(
    path: Path,
    *,
    lang: str | None = None,
    limit: int | None = None,
    strict: bool = True,
    stats: ReadStats | None = None,
) -> Iterator[FCLogEvent]:
    """Events of the dataset at ``path`` (format detected by path), at most ``limit`` of them.

    ``lang`` picks a HammerBench language (``zh``/``en``); ``strict=False`` skips bad records
    or lines (counted in ``stats.skipped``) instead of raising :class:`DatasetError`. The
    format is detected eagerly, so an unknown layout fails at the call, not at first use.
    """
    if limit is not None and limit < 0:
        raise ValueError("limit must be >= 0")
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "synthetic":
        return read_synthetic(path, lang=lang, limit=limit, stats=stats)
    if fmt == "hammerbench" and lang is not None and lang not in LANGS:
        raise DatasetError(path, None, f"HammerBench languages are {LANGS}, not {lang!r}")
    if fmt == "snips" and lang not in (None, "en"):
        raise DatasetError(path, None, f"SNIPS is English only (lang={lang!r})")
    if fmt == "jsonl" and lang is not None:
        raise DatasetError(path, None, "lang does not apply to JSONL files")
    events = _read(path, fmt, lang, strict, stats if stats is not None else ReadStats())
    return events if limit is None else itertools.islice(events, limit)
