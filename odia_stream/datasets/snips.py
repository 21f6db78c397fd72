"""SNIPS NLU benchmark (``train_<Intent>_full.json``, ``validate_<Intent>.json``) -> ``FCLogEvent``.

Each file is ``{intent: [{"data": [{"text": ..., "entity": slot?}, ...]}, ...]}``. An
utterance becomes one event of app ``snips``: ``query`` = its texts joined (runs of
whitespace collapsed, ends stripped); ``call`` = ``{name: intent, arguments: {slot: text}}``
with string values (whitespace collapsed the same way, so every value is a substring of the
query). A slot tagged twice in one utterance (61 of ~14.5k, mostly annotation noise such as
``restaurant_type``: "joint" ... "restaurant") keeps its first value by default
(``repeated_slots="first"``); ``"join"`` joins the distinct values with a space instead. Both
keep the value a string, as the tool schema says.

Tools: one per intent, derived from the slot inventory of the whole folder (train and
validate files): every slot is a ``string`` property, ``required`` = slots present in at
least 90% of the intent's utterances, descriptions generated (with the most frequent
values as examples). Every event offers all intents' tools (one app).

Encoding: the files are UTF-8, except that ``train_PlayMusic_full.json`` writes one emoji as
a CESU-8 surrogate pair; :func:`~odia_stream.datasets.base.decode_bytes` joins it.
Split groups: identical (case-folded) queries share a group (174 utterances repeat).
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from odia_stream.datasets.base import (
    DatasetError,
    ReadStats,
    dataset_timestamp,
    decode_bytes,
    stable_hash,
    with_group,
)
from schemas import FCLogEvent, FunctionCall, ToolSpec

__all__ = [
    "APP",
    "REQUIRED_SHARE",
    "is_snips_dir",
    "is_snips_file",
    "read_snips",
    "snips_files",
    "snips_tools",
]

log = logging.getLogger(__name__)

APP = "snips"
#: A slot is required when at least this share of the intent's utterances carries it.
REQUIRED_SHARE = 0.9
_FILE = re.compile(r"^(train_(?P<a>[A-Za-z]+)_full|validate_(?P<b>[A-Za-z]+))\.json$")
_EXAMPLES = 3

RepeatedSlots = Literal["first", "join"]


def is_snips_file(path: Path) -> bool:
    """True for a file named like a SNIPS train/validate file."""
    return path.is_file() and _FILE.match(path.name) is not None


def snips_files(path: Path) -> list[Path]:
    """SNIPS files under ``path`` (a folder or one file), train files first, by name."""
    path = Path(path)
    if path.is_file():
        return [path]
    files = [f for f in path.glob("*.json") if _FILE.match(f.name)]
    return sorted(files, key=lambda f: (not f.name.startswith("train_"), f.name))


def is_snips_dir(path: Path) -> bool:
    """True for a folder holding SNIPS train/validate files."""
    return path.is_dir() and bool(snips_files(path))


def _norm(text: str) -> str:
    return " ".join(text.split())


def _load(path: Path) -> tuple[str, list[Any]]:
    try:
        data = json.loads(decode_bytes(path.read_bytes()))
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(path, None, f"not a readable JSON file: {exc}") from exc
    if not isinstance(data, dict) or len(data) != 1:
        raise DatasetError(path, None, "a SNIPS file holds one object {intent: [utterances]}")
    ((intent, records),) = data.items()
    if not isinstance(records, list):
        raise DatasetError(path, None, f"intent {intent!r} does not hold a list")
    return intent, records


def _segments(record: Any) -> list[tuple[str, str | None]]:
    if not isinstance(record, Mapping) or not isinstance(record.get("data"), list):
        raise ValueError("utterance is not {'data': [...]}")
    out: list[tuple[str, str | None]] = []
    for seg in record["data"]:
        if not isinstance(seg, Mapping) or not isinstance(seg.get("text"), str):
            raise ValueError("segment without text")
        entity = seg.get("entity")
        if entity is not None and (not isinstance(entity, str) or not entity.strip()):
            raise ValueError(f"bad entity {entity!r}")
        out.append((seg["text"], entity))
    return out


@dataclass
class _IntentInventory:
    records: int = 0
    presence: Counter[str] = field(default_factory=Counter)
    values: dict[str, Counter[str]] = field(default_factory=dict)


def _words(name: str) -> str:
    """``PlayMusic`` -> ``play music``; ``party_size_number`` -> ``party size number``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ")
    return spaced.lower()


def _build_tools(inventory: Mapping[str, _IntentInventory]) -> list[ToolSpec]:
    tools: list[ToolSpec] = []
    for intent in sorted(inventory):
        inv = inventory[intent]
        props: dict[str, Any] = {}
        for slot in sorted(inv.presence):
            examples = sorted(inv.values[slot].items(), key=lambda kv: (-kv[1], kv[0]))[:_EXAMPLES]
            shown = ", ".join(json.dumps(v, ensure_ascii=False) for v, _ in examples)
            props[slot] = {
                "type": "string",
                "description": f"The {_words(slot)} as the user said it, e.g. {shown}.",
            }
        required = sorted(
            s for s, n in inv.presence.items() if inv.records and n / inv.records >= REQUIRED_SHARE
        )
        words = _words(intent)
        tools.append(
            ToolSpec.model_validate(
                {
                    "name": intent,
                    "description": f"{words[:1].upper()}{words[1:]} (SNIPS intent {intent}); "
                    "pass the details the user mentions, verbatim.",
                    "parameters": {"type": "object", "properties": props, "required": required},
                }
            )
        )
    return tools


@lru_cache(maxsize=8)
def _tools_cached(files: tuple[tuple[str, int, int], ...]) -> tuple[ToolSpec, ...]:
    inventory: dict[str, _IntentInventory] = {}
    for name, _, _ in files:
        intent, records = _load(Path(name))
        inv = inventory.setdefault(intent, _IntentInventory())
        for record in records:
            try:
                segments = _segments(record)
            except ValueError:
                continue
            inv.records += 1
            present: set[str] = set()
            for text, entity in segments:
                value = _norm(text)
                if entity is None or not value:
                    continue
                present.add(entity)
                inv.values.setdefault(entity, Counter())[value] += 1
            inv.presence.update(present)
    return tuple(_build_tools(inventory))


def snips_tools(path: Path) -> list[ToolSpec]:
    """One tool per intent, from the slot inventory of the SNIPS folder at (or holding) ``path``."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    files = snips_files(folder) if is_snips_dir(folder) else [path]
    if not files:
        raise DatasetError(path, None, "no SNIPS files here")
    signature = tuple((str(f.resolve()), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    return list(_tools_cached(signature))


def _arguments(segments: list[tuple[str, str | None]], repeated_slots: RepeatedSlots) -> dict[str, str]:
    values: dict[str, list[str]] = {}
    for text, entity in segments:
        value = _norm(text)
        if entity is not None and value:
            found = values.setdefault(entity, [])
            if value not in found:
                found.append(value)
    if repeated_slots == "first":
        return {slot: vals[0] for slot, vals in values.items()}
    return {slot: " ".join(vals) for slot, vals in values.items()}


def read_snips(
    path: Path,
    *,
    repeated_slots: RepeatedSlots = "first",
    strict: bool = True,
    stats: ReadStats | None = None,
) -> Iterator[FCLogEvent]:
    """Yield SNIPS utterances as events (train files first, then validate, each in file order).

    ``path``: the SNIPS folder or one of its files (tools still come from the whole folder).
    ``strict``: a malformed utterance raises :class:`DatasetError`; else it is skipped and counted.
    """
    if repeated_slots not in ("first", "join"):
        raise ValueError(f"repeated_slots must be 'first' or 'join', not {repeated_slots!r}")
    path = Path(path)
    files = snips_files(path)
    if not files:
        raise DatasetError(
            path, None, "no SNIPS train_<Intent>_full.json / validate_<Intent>.json files here"
        )
    tools = snips_tools(path)
    stats = stats if stats is not None else ReadStats()
    for file in files:
        ordinal = 0  # timestamps count per file, so an event is the same however it is read
        intent, records = _load(file)
        for index, record in enumerate(records):
            locator = f"{APP}/{file.name}#{index}"
            try:
                segments = _segments(record)
                query = _norm("".join(text for text, _ in segments))
                call = FunctionCall(name=intent, arguments=_arguments(segments, repeated_slots))
                event = FCLogEvent(
                    event_id=f"snips-{stable_hash(locator, 20)}",
                    timestamp=dataset_timestamp(ordinal),
                    app=APP,
                    query=query,
                    tools=tools,
                    call=call,
                    source=with_group(locator, f"{APP}:q={stable_hash(query.casefold(), 12)}"),
                )
            except (ValueError, ValidationError) as exc:
                error = DatasetError(file, None, f"utterance {index}: {exc}")
                stats.skip_or_raise(error, strict=strict, log=log, cause=exc)
                continue
            ordinal += 1
            stats.records += 1
            stats.per_file[file.name] += 1
            yield event
