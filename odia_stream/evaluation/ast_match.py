"""AST match of a predicted call against the reference (the large model's) call, like BFCL's checker.

A prediction matches when the function name is the same, it gives every argument the
reference gives (required ones reported apart), it gives no argument the function does not
declare and none the reference left out, and every value equals the reference's after light
normalisation:

* strings: NFKC, case-folded, whitespace and punctuation removed ("New York." = "new york");
* numbers: ``5`` = ``5.0`` = ``"5"`` (a numeric string equals the number it spells);
* booleans: ``true`` = ``"True"``, but never ``1``;
* lists element by element in order, objects key by key;
* an argument whose value is ``null`` or the schema's ``default`` counts as not given.

A required argument the reference itself left out (slot-filling logs call with partial
arguments and ask for the rest) is not demanded of the prediction either.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from odia_stream.evaluation.call_validation import value_repr
from schemas import FunctionCall, FunctionSpec

MatchReason = Literal[
    "match",
    "no_call",
    "unexpected_call",
    "missing_call",
    "wrong_function",
    "unknown_argument",
    "missing_required_argument",
    "missing_argument",
    "extra_argument",
    "wrong_value",
]

_MISSING = object()


@dataclass(frozen=True)
class MatchResult:
    """Whether a prediction matches; ``reason`` is a code, ``detail`` says what differed."""

    ok: bool
    reason: MatchReason
    detail: str = ""
    argument: str | None = None


def normalize_text(text: str) -> str:
    """NFKC, case-folded, without whitespace and punctuation."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in text if not (ch.isspace() or unicodedata.category(ch)[0] in "PZ"))


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).strip()
        try:
            number = float(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return {"true": True, "false": False}.get(value.strip().casefold())
    return None


def values_equal(a: Any, b: Any) -> bool:
    """Equality after light normalisation (see the module docstring)."""
    if isinstance(a, bool) or isinstance(b, bool):
        flag_a, flag_b = _as_bool(a), _as_bool(b)
        return flag_a is not None and flag_a == flag_b
    if (
        isinstance(a, (int, float))
        or isinstance(b, (int, float))
        or (isinstance(a, str) and isinstance(b, str))
    ):
        x, y = _as_number(a), _as_number(b)
        if x is not None and y is not None:
            return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9)
        if isinstance(a, str) and isinstance(b, str):
            return normalize_text(a) == normalize_text(b)
        return False
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        ka = {k for k, v in a.items() if v is not None}
        kb = {k for k, v in b.items() if v is not None}
        return ka == kb and all(values_equal(a[k], b[k]) for k in ka)
    return bool(a == b)


def _given(arguments: Mapping[str, Any], props: Mapping[str, Any]) -> dict[str, Any]:
    """Arguments that count as given: not null and not equal to the declared default."""
    out: dict[str, Any] = {}
    for name, value in arguments.items():
        if value is None:
            continue
        spec = props.get(name)
        default = spec.get("default", _MISSING) if isinstance(spec, Mapping) else _MISSING
        if default is not _MISSING and values_equal(value, default):
            continue
        out[name] = value
    return out


def ast_match(
    predicted: FunctionCall | None, expected: FunctionCall | None, tool: FunctionSpec | None = None
) -> MatchResult:
    """Compare ``predicted`` with ``expected``; ``tool`` is the expected function's spec (optional:
    without it, required and declared arguments are not known and only the reference counts)."""
    if expected is None:
        if predicted is None:
            return MatchResult(True, "no_call")
        return MatchResult(False, "unexpected_call", f"predicted {predicted.name!r}, expected no call")
    if predicted is None:
        return MatchResult(False, "missing_call", f"expected a call of {expected.name!r}")
    if tool is not None and tool.name != expected.name:
        raise ValueError(f"tool spec {tool.name!r} is not the expected function {expected.name!r}")
    if predicted.name != expected.name:
        return MatchResult(
            False, "wrong_function", f"predicted {predicted.name!r}, expected {expected.name!r}"
        )
    raw_props = tool.parameters.get("properties", {}) if tool is not None else {}
    props: Mapping[str, Any] = raw_props if isinstance(raw_props, Mapping) else {}
    required = set(tool.required_arguments()) if tool is not None else set()
    got = _given(predicted.arguments, props)
    want = _given(expected.arguments, props)
    if tool is not None and tool.parameters.get("additionalProperties") in (None, False):
        for name in got:
            if name not in props:
                detail = f"{name!r} is not an argument of {tool.name!r}"
                return MatchResult(False, "unknown_argument", detail, name)
    missing = [n for n in want if n not in got]
    for name in sorted(missing, key=lambda n: (n not in required, n)):
        reason: MatchReason = "missing_required_argument" if name in required else "missing_argument"
        return MatchResult(False, reason, f"{name!r} = {value_repr(want[name])} is missing", name)
    for name in got:
        if name not in want:
            return MatchResult(
                False, "extra_argument", f"{name!r} = {value_repr(got[name])} is not in the reference", name
            )
    for name, value in want.items():
        if not values_equal(got[name], value):
            return MatchResult(
                False,
                "wrong_value",
                f"{name!r}: predicted {value_repr(got[name])}, expected {value_repr(value)}",
                name,
            )
    return MatchResult(True, "match")


CallPair = (
    tuple[FunctionCall | None, FunctionCall | None]
    | tuple[FunctionCall | None, FunctionCall | None, FunctionSpec | None]
)


def ast_accuracy(pairs: Iterable[CallPair]) -> float:
    """Share of ``(predicted, expected[, tool])`` pairs that :func:`ast_match`; raises on none."""
    total = hits = 0
    for pair in pairs:
        if len(pair) not in (2, 3):
            raise ValueError(f"expected (predicted, expected[, tool]), got {len(pair)} items")
        tool = pair[2] if len(pair) == 3 else None
        total += 1
        hits += ast_match(pair[0], pair[1], tool).ok
    if total == 0:
        raise ValueError("ast_accuracy of no pairs is undefined")
    return hits / total
