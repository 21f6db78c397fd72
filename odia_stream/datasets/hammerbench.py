"""HammerBench dialogues -> ``FCLogEvent`` (one event per ``function call`` message).

Record layout: ``messages`` (roles ``user``, ``function call`` with ``{name, arguments}``,
``assistant``), ``single_tool`` (the correct tool), often ``multiple_tools`` (the offered
tools; ``single_tool`` when absent) and sometimes ``id``.

For each ``function call`` message:

* ``query``: the last user message before it. In ``*External`` single-turn files the user
  message reads ``EK:<external knowledge>\\nquery:<query>``; with ``split_external_knowledge``
  the query is the part after ``query:`` and the knowledge becomes a ``system`` message at the
  end of ``history`` (so clustering sees the request, and the generator still sees the facts).
* ``history``: the messages before that user message in OpenAI shape (``function call`` ->
  assistant ``tool_calls`` with id ``call_<n>``, n = the call's index in the record), trimmed
  to the last ``history_turns`` turns (a turn = a user message and what follows it up to the
  next user message). HammerBench has no tool results, so none are invented.
* ``call``: the call; ``None`` in ``ir_*`` files (no offered tool fits). A call naming a tool
  that is not offered (non-``ir`` files) gets ``single_tool``'s schema added to the offered
  tools (counted in :attr:`ReadStats.tool_added`).
* ``source``: ``hammerbench/<lang>/<file>#<record index>/<id or ->/turn<k>;group=<key>``
  (k = index of the query's user message among the record's user messages);
  ``event_id`` = ``hb-<lang>-<hash of the locator>``; ``app`` = ``hammerbench``.

Split groups (:func:`group_of`): files named ``HammerBench_*`` that share an ``id`` rewrite
one base dialogue, and ids are shared across ``zh``/``en`` (translations), so the group is
``hammerbench:id=<id>``. Records without an id whose first user message is the first user
message of an id-bearing record in the same language folder (423 of the ``IS`` records)
join that id's group; other id-less records are grouped by their first user message
(``hammerbench:<lang>:q=<hash>``), which also ties ``ST_External`` to ``ir_ST_External``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from odia_stream.datasets.base import (
    DatasetError,
    ReadStats,
    dataset_timestamp,
    decode_bytes,
    group_of,
    stable_hash,
    with_group,
)
from schemas import ChatMessage, FCLogEvent, FunctionCall, ToolCall, ToolSpec

__all__ = ["APP", "LANGS", "group_of", "hammerbench_files", "is_hammerbench_file", "read_hammerbench"]

log = logging.getLogger(__name__)

APP = "hammerbench"
LANGS = ("en", "zh")

_EK_QUERY = re.compile(r"\n\s*query\s*[:\uff1a]\s*")
_EK_HEAD = re.compile(r"^\s*EK\s*[:\uff1a]\s*")


def _load_records(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(decode_bytes(path.read_bytes()))
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(path, None, f"not a readable JSON file: {exc}") from exc
    if not isinstance(data, list):
        raise DatasetError(path, None, "a HammerBench file holds a JSON list of records")
    return data


def is_hammerbench_file(path: Path) -> bool:
    """True for a ``.json`` file whose first record looks like a HammerBench dialogue."""
    if path.suffix != ".json" or not path.is_file():
        return False
    try:
        head = decode_bytes(path.read_bytes()[:4096]).lstrip()
    except OSError:
        return False
    return head.startswith("[") and '"messages"' in head


def hammerbench_files(path: Path, lang: str | None = None) -> list[Path]:
    """The files a HammerBench path stands for, in reading order (langs, then file names).

    ``path``: the root (with ``zh``/``en`` folders), one language folder, or one file.
    """
    path = Path(path)
    if path.is_file():
        if lang is not None and path.parent.name != lang:
            raise DatasetError(path, None, f"file is in language folder {path.parent.name!r}, not {lang!r}")
        return [path]
    if not path.is_dir():
        raise DatasetError(path, None, "no such file or directory")
    lang_dirs = [path / d for d in LANGS if (path / d).is_dir()]
    if lang_dirs:
        if lang is not None:
            lang_dirs = [d for d in lang_dirs if d.name == lang]
            if not lang_dirs:
                raise DatasetError(path, None, f"no HammerBench language folder {lang!r} (have {LANGS})")
        return [f for d in lang_dirs for f in sorted(d.glob("*.json"))]
    if lang is not None and path.name != lang:
        raise DatasetError(path, None, f"folder is {path.name!r}, not language {lang!r}")
    files = sorted(path.glob("*.json"))
    if not files:
        raise DatasetError(path, None, "no HammerBench .json files here")
    return files


def _first_user(record: Mapping[str, Any]) -> str | None:
    for message in record.get("messages") or ():
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
    return None


def _dir_signature(directory: Path) -> tuple[tuple[str, int, int], ...]:
    return tuple((f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in sorted(directory.glob("*.json")))


@lru_cache(maxsize=8)
def _opening_index_cached(directory: str, signature: tuple[tuple[str, int, int], ...]) -> dict[str, str]:
    index: dict[str, str] = {}
    ambiguous: set[str] = set()
    for name, _, _ in signature:
        try:
            records = _load_records(Path(directory) / name)
        except DatasetError:
            continue
        for record in records:
            if not isinstance(record, Mapping) or record.get("id") is None:
                continue
            opening = _first_user(record)
            if opening is None:
                continue
            rid = str(record["id"])
            if index.setdefault(opening, rid) != rid:
                ambiguous.add(opening)
    for opening in ambiguous:
        del index[opening]
    return index


def _opening_index(directory: Path) -> dict[str, str]:
    """First user message -> base dialogue id, over the id-bearing records of a language folder."""
    return _opening_index_cached(str(directory.resolve()), _dir_signature(directory))


def _tools(raw: Any, what: str) -> list[ToolSpec]:
    if not isinstance(raw, list):
        raise ValueError(f"{what} is not a list")
    tools: list[ToolSpec] = []
    seen: set[str] = set()
    for item in raw:
        tool = ToolSpec.model_validate(item)
        if tool.name not in seen:
            seen.add(tool.name)
            tools.append(tool)
    return tools


def _split_ek(text: str) -> tuple[str, str | None]:
    """``(query, external knowledge or None)`` of an ``EK:...\\nquery:...`` user message."""
    if not _EK_HEAD.match(text):
        return text, None
    parts = _EK_QUERY.split(text)
    if len(parts) < 2:
        return text, None
    knowledge = _EK_HEAD.sub("", "\nquery:".join(parts[:-1]), count=1).strip()
    query = parts[-1].strip()
    return (query, knowledge) if query else (text, None)


def _convert(
    messages: Sequence[Mapping[str, Any]], call_ids: Mapping[int, int]
) -> list[tuple[int, ChatMessage]]:
    """OpenAI-shape messages, each with its index in the record."""
    out: list[tuple[int, ChatMessage]] = []
    for i, message in enumerate(messages):
        role = message.get("role")
        content = message.get("content")
        if role == "function call":
            call = FunctionCall.model_validate(content)
            tool_call = ToolCall(id=f"call_{call_ids[i]}", function=call)
            out.append((i, ChatMessage(role="assistant", content=None, tool_calls=[tool_call])))
        elif role in ("user", "assistant", "system", "tool"):
            if not isinstance(content, str):
                raise ValueError(f"message {i} ({role}) has non-text content")
            out.append((i, ChatMessage(role=role, content=content)))
        else:
            raise ValueError(f"message {i} has unknown role {role!r}")
    return out


def _trim_turns(history: list[ChatMessage], turns: int) -> list[ChatMessage]:
    """The last ``turns`` turns of ``history`` (a turn starts at a user message)."""
    starts = [i for i, m in enumerate(history) if m.role == "user"]
    if len(starts) <= turns:
        return history
    return history[starts[-turns] :] if turns > 0 else []


def _record_events(
    record: Mapping[str, Any],
    *,
    lang: str,
    file_name: str,
    index: int,
    group: str,
    no_call_file: bool,
    include_no_call_turns: bool,
    split_external_knowledge: bool,
    history_turns: int,
    stats: ReadStats,
    first_ordinal: int,
) -> list[FCLogEvent]:
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("record has no messages")
    if not all(isinstance(m, Mapping) for m in messages):
        raise ValueError("a message is not an object")
    single = _tools(record.get("single_tool") or [], "single_tool")
    offered_raw = record.get("multiple_tools") or record.get("single_tool")
    if not offered_raw:
        raise ValueError("record offers no tools (neither multiple_tools nor single_tool)")
    offered = _tools(offered_raw, "multiple_tools")
    call_ids: dict[int, int] = {}
    for i, m in enumerate(messages):
        if m.get("role") == "function call":
            call_ids[i] = len(call_ids)
    converted = _convert(messages, call_ids)
    rid = record.get("id")
    rid_text = "-" if rid is None else str(rid)

    user_positions = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    # (user message index, function-call message index or None) per event, in order.
    targets: list[tuple[int, int | None]] = []
    for u_rank, u in enumerate(user_positions):
        end = user_positions[u_rank + 1] if u_rank + 1 < len(user_positions) else len(messages)
        calls = [i for i in range(u + 1, end) if messages[i].get("role") == "function call"]
        if calls:
            targets.extend((u, c) for c in calls)
        elif include_no_call_turns:
            targets.append((u, None))
    if call_ids and min(call_ids) < (user_positions[0] if user_positions else len(messages)):
        raise ValueError("a function call comes before any user message")

    events: list[FCLogEvent] = []
    seen_turns: dict[int, int] = {}
    for u, c in targets:
        turn = user_positions.index(u)
        repeat = seen_turns.get(u, 0)
        seen_turns[u] = repeat + 1
        turn_label = f"turn{turn}" if repeat == 0 else f"turn{turn}.{repeat}"
        query = messages[u]["content"]
        history = _trim_turns([m for i, m in converted if i < u], history_turns)
        if split_external_knowledge:
            query, knowledge = _split_ek(query)
            if knowledge:
                history = [*history, ChatMessage(role="system", content=f"External knowledge:\n{knowledge}")]
        tools = offered
        call: FunctionCall | None = None
        if c is not None and not no_call_file:
            call = FunctionCall.model_validate(messages[c]["content"])
            if call.name not in {t.name for t in tools}:
                fix = [t for t in single if t.name == call.name]
                if not fix:
                    raise ValueError(
                        f"call names {call.name!r}, offered neither in the tools nor in single_tool"
                    )
                tools = [*tools, *fix]
                stats.tool_added += 1
        locator = f"{APP}/{lang}/{file_name}#{index}/{rid_text}/{turn_label}"
        events.append(
            FCLogEvent(
                event_id=f"hb-{lang}-{stable_hash(locator, 20)}",
                timestamp=dataset_timestamp(first_ordinal + len(events)),
                app=APP,
                query=query,
                history=history,
                tools=tools,
                call=call,
                source=with_group(locator, group),
            )
        )
    return events


def read_hammerbench(
    path: Path,
    *,
    lang: str | None = None,
    strict: bool = True,
    include_no_call_turns: bool = False,
    split_external_knowledge: bool = True,
    history_turns: int = 3,
    stats: ReadStats | None = None,
) -> Iterator[FCLogEvent]:
    """Yield the events of a HammerBench root, language folder or file, in a fixed order.

    ``strict``: a malformed record raises :class:`DatasetError`; otherwise it is skipped,
    counted in ``stats.skipped`` and logged. ``include_no_call_turns``: also yield a
    ``call=None`` event for each user message answered without a call (the intent-shift
    turns of ``HammerBench_IS``, where the assistant says no tool fits).
    """
    stats = stats if stats is not None else ReadStats()
    for file in hammerbench_files(Path(path), lang):
        ordinal = 0  # timestamps count per file, so an event is the same however it is read
        file_lang = file.parent.name
        records = _load_records(file)
        openings = _opening_index(file.parent)
        no_call_file = file.name.startswith("ir_")
        for index, record in enumerate(records):
            try:
                if not isinstance(record, Mapping):
                    raise ValueError("record is not an object")
                if record.get("id") is not None:
                    group = f"{APP}:id={record['id']}"
                else:
                    opening = _first_user(record) or ""
                    base = openings.get(opening)
                    group = (
                        f"{APP}:id={base}"
                        if base is not None
                        else f"{APP}:{file_lang}:q={stable_hash(opening, 12)}"
                    )
                events = _record_events(
                    record,
                    lang=file_lang,
                    file_name=file.name,
                    index=index,
                    group=group,
                    no_call_file=no_call_file,
                    include_no_call_turns=include_no_call_turns,
                    split_external_knowledge=split_external_knowledge,
                    history_turns=history_turns,
                    stats=stats,
                    first_ordinal=ordinal,
                )
            except (ValueError, ValidationError, KeyError, TypeError) as exc:
                error = DatasetError(file, None, f"record {index}: {exc}")
                stats.skip_or_raise(error, strict=strict, log=log, cause=exc)
                continue
            stats.records += 1
            for event in events:
                ordinal += 1
                stats.per_file[f"{file_lang}/{file.name}"] += 1
                yield event
