r"""Reading and writing entity dictionary files.

Accepted input formats (picked by suffix: ``.tsv``/``.txt`` -> TSV, ``.json`` -> JSON,
anything else by sniffing the first non-blank character):

* **TSV**, UTF-8, one entry per line: ``type<TAB>value`` with an optional third column
  ``count`` (a positive integer). Blank lines and lines starting with ``#`` are ignored.
* **JSON**, ``{"type": ["value", ...]}`` or ``{"type": {"value": count}}``.
* **Saved dictionary** (what :func:`write_dictionary` writes)::

    {"format": "odia-entity-dictionary", "format_version": 1,
     "entries": {"singer": {"周杰伦": {"count": 3, "source": "learned"}}}}

Any malformed line or value raises :class:`EntityFileError` (a ``ValueError``) naming
the file and the line or key.

    >>> parse_tsv("# music\ngenre\t摇滚\t2\n", origin="music.tsv")
    [EntityRow(entity_type='genre', value='摇滚', count=2, source='file', line=2)]
    >>> parse_tsv("genre 摇滚\n", origin="music.tsv")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    odia_stream.templates.io.EntityFileError: music.tsv:1: expected 'type<TAB>value[<TAB>count]', ...
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from odia_stream.atomic_files import write_json_atomic

__all__ = [
    "FORMAT_NAME",
    "EntityFileError",
    "EntityRow",
    "parse_json_entities",
    "parse_tsv",
    "read_entity_file",
    "write_dictionary",
]

FORMAT_NAME = "odia-entity-dictionary"
FORMAT_VERSION = 1
SOURCES = ("file", "learned")


class EntityFileError(ValueError):
    """A malformed entity file; the message names the file and the line or key."""


@dataclass(frozen=True, slots=True)
class EntityRow:
    """One parsed dictionary entry (type and value not yet normalised)."""

    entity_type: str
    value: str
    count: int = 1
    source: str = "file"
    line: int | None = None  # 1-based line in a TSV file, for error messages


def parse_tsv(text: str, origin: str = "<tsv>") -> list[EntityRow]:
    """Parse TSV text (``type<TAB>value[<TAB>count]`` lines, ``#`` comments)."""
    rows: list[EntityRow] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) not in (2, 3):
            raise EntityFileError(
                f"{origin}:{lineno}: expected 'type<TAB>value[<TAB>count]',"
                f" got {len(cols)} column(s): {raw!r}"
            )
        etype, value = cols[0].strip(), cols[1].strip()
        if not etype or not value:
            raise EntityFileError(f"{origin}:{lineno}: empty type or value: {raw!r}")
        count = 1
        if len(cols) == 3:
            try:
                count = int(cols[2].strip())
            except ValueError:
                raise EntityFileError(f"{origin}:{lineno}: count must be an integer: {raw!r}") from None
            if count < 1:
                raise EntityFileError(f"{origin}:{lineno}: count must be >= 1: {raw!r}")
        rows.append(EntityRow(etype, value, count, "file", lineno))
    return rows


def _check_count(count: Any, where: str) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise EntityFileError(f"{where}: count must be a positive integer, got {count!r}")
    return count


def parse_json_entities(data: Any, origin: str = "<json>") -> list[EntityRow]:
    """Turn decoded JSON (any of the JSON formats in the module docstring) into rows."""
    if not isinstance(data, dict):
        raise EntityFileError(f"{origin}: top level must be an object, got {type(data).__name__}")
    rows: list[EntityRow] = []
    if data.get("format") == FORMAT_NAME:
        if data.get("format_version") != FORMAT_VERSION:
            raise EntityFileError(f"{origin}: unsupported format_version {data.get('format_version')!r}")
        entries = data.get("entries")
        if not isinstance(entries, dict):
            raise EntityFileError(f"{origin}: 'entries' must be an object")
        for etype, values in entries.items():
            if not isinstance(values, dict):
                raise EntityFileError(f"{origin}: entries[{etype!r}] must be an object")
            for value, info in values.items():
                where = f"{origin}: entries[{etype!r}][{value!r}]"
                if not isinstance(info, dict):
                    raise EntityFileError(f"{where} must be an object")
                source = info.get("source", "file")
                if source not in SOURCES:
                    raise EntityFileError(f"{where}: source must be one of {SOURCES}, got {source!r}")
                rows.append(EntityRow(etype, value, _check_count(info.get("count", 1), where), source))
        return rows
    for etype, values in data.items():
        where = f"{origin}: key {etype!r}"
        if isinstance(values, list):
            for i, value in enumerate(values):
                if not isinstance(value, str) or not value.strip():
                    raise EntityFileError(f"{where}[{i}]: values must be non-empty strings, got {value!r}")
                rows.append(EntityRow(etype, value.strip(), 1, "file"))
        elif isinstance(values, dict):
            for value, count in values.items():
                if not value.strip():
                    raise EntityFileError(f"{where}: empty value")
                rows.append(
                    EntityRow(etype, value.strip(), _check_count(count, f"{where}[{value!r}]"), "file")
                )
        else:
            raise EntityFileError(f"{where}: expected a list of values or a {{value: count}} object")
    return rows


def read_entity_file(path: str | os.PathLike[str]) -> list[EntityRow]:
    """Read a TSV or JSON entity file (see the module docstring for the formats)."""
    p = Path(path)
    text = p.read_text(encoding="utf-8-sig")
    suffix = p.suffix.lower()
    if suffix in (".tsv", ".txt"):
        is_json = False
    elif suffix == ".json":
        is_json = True
    else:
        is_json = text.lstrip().startswith("{")
    if not is_json:
        return parse_tsv(text, origin=str(p))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EntityFileError(f"{p}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    return parse_json_entities(data, origin=str(p))


def write_dictionary(path: str | os.PathLike[str], rows: Iterable[EntityRow]) -> None:
    """Write rows in the saved-dictionary JSON format, atomically (temp file, fsync, ``os.replace``)."""
    entries: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        entries.setdefault(row.entity_type, {})[row.value] = {"count": row.count, "source": row.source}
    payload = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "entries": entries}
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(p, payload, indent=1, sort_keys=True, ensure_ascii=False)
