"""Complete calls out of a generation while it is still streaming (AsyncLM's early dispatch).

AsyncLM (Gim et al., 2024) starts each call the moment its text is complete, while the model goes
on decoding. Two shapes of stream reach odia-stream:

* **generated text** (the small model's own format, or any model writing JSON): one or more call
  objects, bare or inside a top-level JSON array, possibly between tags such as ``<tool_call>``.
  :class:`CallTextStream` scans the text as it arrives, chunk by chunk (a chunk may end anywhere,
  inside a string, an escape or a multi-byte character's text), and hands out each call object the
  moment its closing brace arrives;
* **OpenAI-style streamed ``tool_calls`` deltas** (the large model): per call index, a name and
  argument-text fragments. :class:`ToolCallDeltas` assembles them and hands out a call the moment
  its arguments object closes, before the next call or the end of the answer.

Each finished object is decoded (:func:`call_from_object`: ``{"name", "arguments"}`` or the
one-key ``{"<function>": {arguments}}`` form) into a :class:`~schemas.FunctionCall`; one that
does not parse or decode is reported as a :class:`StreamProblem` (never as a call), and scanning
goes on with the next object. What may be *dispatched* early is a further question
(:func:`early_dispatchable`: it validates against the offered tools, and only functions marked
safe go early). Pure logic: no Kafka, no I/O; state is O(open object) per stream.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from odia_stream.evaluation.call_validation import validate_call
from schemas import FunctionCall, ToolSpec

__all__ = [
    "CallTextStream",
    "StreamProblem",
    "StreamedCall",
    "ToolCallDeltas",
    "call_from_object",
    "early_dispatchable",
]

_CLOSER = {"{": "}", "[": "]"}


@dataclass(frozen=True)
class StreamedCall:
    """A complete, decoded call: its place in the answer and where in the stream it closed."""

    index: int
    call: FunctionCall
    #: Characters of the stream read when the call closed (its closing brace included).
    end: int


@dataclass(frozen=True)
class StreamProblem:
    """An object that closed (or was cut off) but is not a call: never dispatched."""

    index: int
    text: str
    error: str


def call_from_object(obj: Any) -> FunctionCall:
    """A call from a decoded JSON object: ``{"name": F, "arguments": {...} | "<json>"}`` or
    ``{F: {...}}``. Raises ``ValueError`` for anything else.

    >>> call_from_object({"play": {"song": "x"}}).name, call_from_object({"name": "f", "arguments": "{}"}).arguments
    ('play', {})
    """
    if not isinstance(obj, dict):
        raise ValueError(f"a call is a JSON object, got {type(obj).__name__}")
    if "name" in obj and set(obj) <= {"name", "arguments", "id", "type"}:
        payload: Mapping[str, Any] = {"name": obj["name"], "arguments": obj.get("arguments")}
    elif len(obj) == 1:
        (name, arguments), = obj.items()
        if not isinstance(arguments, dict):
            raise ValueError(f"the arguments of {name!r} are not an object")
        payload = {"name": name, "arguments": arguments}
    else:
        raise ValueError(f"not a call: keys {sorted(obj)[:5]}")
    try:
        return FunctionCall.model_validate(payload)
    except ValidationError as exc:
        raise ValueError(exc.errors()[0]["msg"]) from exc


@dataclass
class _Scanner:
    """Incremental JSON structure scanner: finds where each top-level object (or each object
    directly inside a top-level array) starts and ends, across chunks."""

    stack: list[str] = field(default_factory=list)
    in_string: bool = False
    escaped: bool = False
    #: Text of the object being read (from its opening brace), while one is open.
    current: list[str] = field(default_factory=list)
    #: Depth (len(stack)) at which call objects open: 0 bare, 1 inside a top-level array.
    base: int = 0
    read: int = 0

    def feed(self, chunk: str) -> Iterable[tuple[str, int, str | None]]:
        """``(object text, stream position after it, error or None)`` for each object that closed
        (or broke) in ``chunk``."""
        start = 0  # where the open object's text begins in this chunk
        for i, ch in enumerate(chunk):
            depth = len(self.stack)
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif ch == "\\":
                    self.escaped = True
                elif ch == '"':
                    self.in_string = False
                continue
            if depth > self.base and ch == '"':
                self.in_string = True
            elif ch == "[" and depth == 0:
                self.stack.append("[")
                self.base = 1
            elif ch == "{" or (ch == "[" and depth > self.base):
                if depth == self.base:
                    self.current, start = [], i
                self.stack.append(ch)
            elif ch in "}]" and depth > self.base:
                opened = self.stack.pop()
                if _CLOSER[opened] != ch:
                    text = "".join(self.current) + chunk[start : i + 1]
                    self._reset()
                    yield text, self.read + i + 1, f"{ch!r} closes {opened!r}"
                    continue
                if len(self.stack) == self.base:
                    text = "".join(self.current) + chunk[start : i + 1]
                    self.current = []
                    yield text, self.read + i + 1, None
            elif ch == "]" and depth == 1 and self.base == 1:
                self.stack.pop()
                self.base = 0
        if len(self.stack) > self.base:
            self.current.append(chunk[start:])
        self.read += len(chunk)

    def _reset(self) -> None:
        self.stack, self.in_string, self.escaped, self.current, self.base = [], False, False, [], 0

    @property
    def open_text(self) -> str | None:
        """The text of an object still open (``None`` when none is)."""
        return "".join(self.current) if len(self.stack) > self.base else None


class CallTextStream:
    """Calls out of generated text fed in chunks (see the module docstring).

    >>> s = CallTextStream()
    >>> [c.call.name for c in s.feed('[{"name": "a", "arguments": {"x": "}"}}, {"b": ')]
    ['a']
    >>> [c.call.name for c in s.feed('{}}]')], s.close()
    (['b'], [])
    """

    def __init__(self, decode: Callable[[Any], FunctionCall] = call_from_object) -> None:
        self._decode = decode
        self._scan = _Scanner()
        self._index = 0
        self.closed = False

    def feed(self, chunk: str) -> list[StreamedCall | StreamProblem]:
        """The calls (and problems) that ``chunk`` completes, in order."""
        if self.closed:
            raise RuntimeError("the stream was closed")
        out: list[StreamedCall | StreamProblem] = []
        for text, end, error in self._scan.feed(chunk):
            out.append(self._finish(text, end, error))
        return out

    def close(self) -> list[StreamProblem]:
        """End of the stream: an object still open was cut off (a problem, never a call)."""
        self.closed = True
        text = self._scan.open_text
        if text is None:
            return []
        self._index += 1
        return [StreamProblem(self._index - 1, text, "truncated: the stream ended inside the object")]

    def _finish(self, text: str, end: int, error: str | None) -> StreamedCall | StreamProblem:
        index = self._index
        self._index += 1
        if error is not None:
            return StreamProblem(index, text, f"malformed: {error}")
        try:
            return StreamedCall(index, self._decode(json.loads(text)), end)
        except json.JSONDecodeError as exc:
            return StreamProblem(index, text, f"not JSON: {exc.msg}")
        except ValueError as exc:
            return StreamProblem(index, text, f"not a call: {exc}")


@dataclass
class _PendingToolCall:
    name: str = ""
    arguments: list[str] = field(default_factory=list)
    scanner: _Scanner = field(default_factory=_Scanner)
    done: bool = False


class ToolCallDeltas:
    """Calls out of OpenAI-style streamed ``tool_calls`` deltas (``choices[0].delta.tool_calls``:
    ``{"index", "id"?, "function": {"name"?, "arguments"?}}``), each handed out when its
    arguments object closes; an index's later fragments after that are ignored."""

    def __init__(self) -> None:
        self._calls: dict[int, _PendingToolCall] = {}
        self._read = 0

    def feed(self, deltas: Sequence[Mapping[str, Any]]) -> list[StreamedCall | StreamProblem]:
        """The calls (and problems) these deltas complete."""
        out: list[StreamedCall | StreamProblem] = []
        for delta in deltas:
            index = int(delta["index"])
            pending = self._calls.setdefault(index, _PendingToolCall())
            function = delta.get("function") or {}
            pending.name += function.get("name") or ""
            piece = function.get("arguments") or ""
            self._read += len(piece)
            if pending.done or not piece:
                continue
            pending.arguments.append(piece)
            for text, _, error in pending.scanner.feed(piece):
                pending.done = True
                out.append(self._finish(index, pending.name, text, error))
                break
        return out

    def close(self) -> list[StreamedCall | StreamProblem]:
        """End of the answer: a call whose arguments never closed is a problem; one whose arguments
        were empty (a function without parameters) is a call now."""
        out: list[StreamedCall | StreamProblem] = []
        for index, pending in sorted(self._calls.items()):
            if pending.done:
                continue
            pending.done = True
            text = "".join(pending.arguments)
            if text.strip():
                out.append(StreamProblem(index, text, "truncated: the arguments never closed"))
            else:
                out.append(self._finish(index, pending.name, "{}", None))
        return out

    def _finish(self, index: int, name: str, text: str, error: str | None) -> StreamedCall | StreamProblem:
        if error is not None:
            return StreamProblem(index, text, f"malformed: {error}")
        try:
            return StreamedCall(index, FunctionCall(name=name, arguments=json.loads(text)), self._read)
        except json.JSONDecodeError as exc:
            return StreamProblem(index, text, f"not JSON: {exc.msg}")
        except ValidationError as exc:
            return StreamProblem(index, text, f"not a call: {exc.errors()[0]['msg']}")


def early_dispatchable(
    call: FunctionCall, tools: Sequence[ToolSpec], safe: Collection[str], *, check_required: bool = True
) -> tuple[bool, str]:
    """Whether ``call`` may be dispatched before the answer is complete, and why not: its function
    must be marked safe for early execution (read-only) and the call must validate against the
    offered tools. A call that may not go early waits for the full, validated answer."""
    if call.name not in safe:
        return False, f"{call.name} is not marked safe for early execution"
    result = validate_call(call, list(tools), check_required=check_required)
    if not result.ok:
        return False, "; ".join(str(e) for e in result.errors)
    return True, ""
