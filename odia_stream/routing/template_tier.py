"""The template tier: a call assembled from the request's entity slots, with no model.

A router snapshot carries the templates' valid argument programs (:class:`ProgramEntry`, built by
:func:`~odia_stream.routing.builder.live_programs`). For a request the router routed small with
function ``F``, :class:`TemplateTier` looks up the program of the request's template (scope +
normalised NER template, :mod:`odia_stream.keys`, exactly as the learner counted it) and answers
when

* the program exists and calls ``F`` (else ``no_program`` / ``other_function``);
* ``F`` is not in ``router.never_small`` (``never_small``) and the program's error budget allows
  it (``error_budget``: shadow checks that disagree demote a program as they demote a cluster);
* every slot the program reads is in the request (``missing_slot``) and the assembled call passes
  the offered tools' schemas like a model's call (``invalid_call``).

Anything else falls through (:attr:`TemplateAnswer.miss` says why) to the small model, never to a
guessed answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

from odia_stream.evaluation.call_validation import validate_call
from odia_stream.keys import TemplatedQuery, TemplateKey
from odia_stream.routing.snapshot import ProgramEntry
from odia_stream.templates import EntityDictionary
from odia_stream.templates.programs import ArgSource, AssemblyError
from schemas import FunctionCall, ServeRequest

__all__ = ["MISS_REASONS", "TemplateAnswer", "TemplateTier"]

#: Why a request fell through the template tier.
MISS_REASONS = ("no_program", "other_function", "never_small", "error_budget", "missing_slot", "invalid_call")


@dataclass(frozen=True)
class TemplateAnswer:
    """The template tier's answer to one request: a call, or why there is none."""

    #: The assembled, schema-validated call (``None``: fall through to the small model).
    call: FunctionCall | None
    #: The key of the request's program (``p<hex>``) when its template has one.
    program: str | None
    #: Why it fell through (one of :data:`MISS_REASONS`), ``None`` when answered.
    miss: str | None
    #: Lookup, assembly and validation, in milliseconds (templating the request included).
    assemble_ms: float
    #: What went wrong in detail (missing slot, schema issues), for logs.
    detail: str = ""


@dataclass(frozen=True)
class _Compiled:
    entry: ProgramEntry
    sources: tuple[tuple[str, ArgSource], ...]


class TemplateTier:
    """The programs of one snapshot, ready to answer requests (see the module docstring)."""

    def __init__(
        self,
        programs: Iterable[ProgramEntry],
        dictionaries: dict[str, EntityDictionary],
        *,
        never_small: Collection[str],
        allows: Callable[[str], bool],
    ) -> None:
        self._programs: dict[TemplateKey, _Compiled] = {
            (p.app, p.scope, p.template): _Compiled(p, tuple((name, ArgSource.parse(src)) for name, src in p.sources))
            for p in programs
        }
        self._dictionaries = dictionaries
        self._never_small = frozenset(never_small)
        self._allows = allows

    def __len__(self) -> int:
        return len(self._programs)

    def program_of(self, prepared: TemplatedQuery) -> ProgramEntry | None:
        """The program of a templated request, if its template has one."""
        compiled = self._programs.get((prepared.app, prepared.scope, prepared.text))
        return compiled.entry if compiled is not None else None

    def answer(
        self,
        request: ServeRequest,
        prepared: TemplatedQuery,
        function: str | None,
        *,
        check_required: bool = True,
        started: float | None = None,
    ) -> TemplateAnswer:
        """Answer ``request`` (templated as ``prepared``) routed small with ``function`` from its
        template's program, or say why not; ``started`` (a ``perf_counter`` time) is when the
        work began, templating included."""
        t0 = time.perf_counter() if started is None else started

        def miss(reason: str, key: str | None, detail: str = "") -> TemplateAnswer:
            return TemplateAnswer(None, key, reason, (time.perf_counter() - t0) * 1000.0, detail)

        compiled = self._programs.get((prepared.app, prepared.scope, prepared.text))
        if compiled is None:
            return miss("no_program", None)
        entry = compiled.entry
        if entry.function != function:
            return miss("other_function", entry.key, f"routed to {function}, the program calls {entry.function}")
        if entry.function in self._never_small:
            return miss("never_small", entry.key)
        if not self._allows(entry.key):
            return miss("error_budget", entry.key)
        dictionary = self._dictionaries.get(prepared.app) or EntityDictionary()
        slots = prepared.template.slots
        try:
            arguments = {name: source.value(slots, dictionary) for name, source in compiled.sources}
        except AssemblyError as exc:
            return miss("missing_slot", entry.key, str(exc))
        call = FunctionCall(name=entry.function, arguments=arguments)
        checked = validate_call(call, request.tools, check_required=check_required)
        if not checked.ok:
            return miss("invalid_call", entry.key, "; ".join(str(e) for e in checked.errors))
        return TemplateAnswer(call, entry.key, None, (time.perf_counter() - t0) * 1000.0)
