"""Safety rules that override every stage: what the small model must never answer.

* no tools offered, an app the router never saw, or (when the scope includes the tool set) a
  tool set it never saw: ``unknown_tools``;
* the predicted function is listed in ``never_small`` (e.g. payments): ``never_small``;
* the predicted function is not among the request's offered tools: ``function_not_offered``;
* the offered function's parameters differ from every schema it was learned with (the tool
  changed since the small model was trained on it): ``unknown_tools``.

>>> from schemas import ToolSpec
>>> a = ToolSpec(function={"name": "pay", "description": "Pay", "parameters": {"type": "object"}})
>>> b = ToolSpec(function={"name": "pay", "description": "Pay now!", "parameters": {"type": "object"}})
>>> schema_fingerprint(a.function) == schema_fingerprint(b.function)   # descriptions do not count
True
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from odia_stream.context import tools_fingerprint
from odia_stream.routing.decision import Reason
from schemas import FunctionSpec, ServeRequest, ToolSpec

_IGNORED_KEYS = frozenset({"description", "title", "examples"})


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in _IGNORED_KEYS}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def schema_fingerprint(spec: FunctionSpec) -> str:
    """A short hash of a function's parameter schema (names, types, required, enums; no descriptions)."""
    canonical = json.dumps(_strip(spec.parameters), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha1(canonical.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class ToolCatalog:
    """What the router learned about tools: per app, each function's schemas and the tool sets seen."""

    schemas: Mapping[str, Mapping[str, frozenset[str]]] = field(default_factory=dict)
    tool_sets: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def from_tools(cls, offered: Iterable[tuple[str, list[ToolSpec]]]) -> ToolCatalog:
        """Build from ``(app, offered tools)`` pairs (the tool lists of learned records)."""
        schemas: dict[str, dict[str, set[str]]] = {}
        sets: dict[str, set[str]] = {}
        for app, tools in offered:
            sets.setdefault(app, set()).add(tools_fingerprint(tools))
            per_app = schemas.setdefault(app, {})
            for t in tools:
                per_app.setdefault(t.name, set()).add(schema_fingerprint(t.function))
        return cls(
            {a: {f: frozenset(v) for f, v in fs.items()} for a, fs in schemas.items()},
            {a: frozenset(v) for a, v in sets.items()},
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready, canonical form."""
        return {
            "schemas": {a: {f: sorted(v) for f, v in sorted(fs.items())} for a, fs in sorted(self.schemas.items())},
            "tool_sets": {a: sorted(v) for a, v in sorted(self.tool_sets.items())},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ToolCatalog:
        """Inverse of :meth:`to_json`."""
        return cls(
            {a: {f: frozenset(v) for f, v in fs.items()} for a, fs in data["schemas"].items()},
            {a: frozenset(v) for a, v in data["tool_sets"].items()},
        )


@dataclass(frozen=True)
class SafetyRules:
    """The rules, bound to a catalog. ``check_tool_sets``: the scope includes the tool set, so an
    unseen tool set means an unseen context."""

    catalog: ToolCatalog
    never_small: frozenset[str] = frozenset()
    check_tool_sets: bool = False

    def precheck(self, request: ServeRequest) -> Reason | None:
        """A reason to go large before anything is computed, or ``None``."""
        if not request.tools or request.app not in self.catalog.schemas:
            return Reason.UNKNOWN_TOOLS
        if self.check_tool_sets and tools_fingerprint(request.tools) not in self.catalog.tool_sets.get(request.app, ()):
            return Reason.UNKNOWN_TOOLS
        return None

    def check(self, function: str, request: ServeRequest) -> Reason | None:
        """A reason the small model must not answer ``request`` with ``function``, or ``None``."""
        if function in self.never_small:
            return Reason.NEVER_SMALL
        offered = next((t for t in request.tools if t.name == function), None)
        if offered is None:
            return Reason.FUNCTION_NOT_OFFERED
        known = self.catalog.schemas.get(request.app, {}).get(function)
        if not known or schema_fingerprint(offered.function) not in known:
            return Reason.UNKNOWN_TOOLS
        return None
