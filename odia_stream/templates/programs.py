"""Argument programs: how a template's calls are assembled from the query's entity slots.

When the large model answers ``play Lover by Taylor Swift`` with
``play_song(song="Lover", artist="Taylor Swift")``, each argument is explained by where its value
comes from (an :class:`ArgSource`):

* ``slot:<type>[#n]``: the value is the query's n-th entity of that type as written (``#n`` from
  2 on; ``slot:song`` is the first ``song``);
* ``slot:<type>[#n]/canonical``: the value is that entity's form in the dictionary (the surface
  form it was first learned as: ``Taylor Swift`` for a query that wrote ``taylor swift``);
* ``const:<json>``: the value itself. A value that a slot explains is not also recorded as a
  constant: this keeps a template's distinct observations few (``play <song>`` over a thousand
  songs is one observation, not a thousand), and the slot is the explanation that generalises.

One call gives an :class:`Observation` (the function and each argument's possible sources);
:class:`TemplateEvidence` counts the observations of one template (scope + template text), at most
``max_observations`` distinct ones per function (more are counted as ``overflow``: calls no program
reproduces). :func:`best_program` picks, for the template's dominant function, each argument's most
frequent source (ties: slot before canonical before constant) and counts the calls the whole
program reproduces: its *agreement*. A program is *valid* (:attr:`Program.valid`) when the
template has at least ``min_support`` answers, no argument is unexplained (its best source covers
fewer than half the calls: a value that varies with nothing in the query) and the Wilson lower
bound of the agreement reaches the target precision. Support and agreement count every answer the
large model gave for the template: a call of another function (or none) is a disagreement, so a
template whose function is uncertain gets no program. :meth:`Program.assemble` builds the call for a
new query's slots.

**Families.** A 0.99 lower bound needs ~270 agreeing answers of one template, so on its own
evidence a rare template ("play <song> by <artist> on repeat") never qualifies, although it is
answered exactly like its common siblings. Programs of one app that call the same function with
the same argument sources form a *family* (:class:`ProgramFamilies`). Its members are those whose
own answers do not speak against the target: the Wilson *upper* bound of their own agreement
reaches it (one disagreement in five answers already rules a template out at 0.99). The members'
pooled support and agreement, valid on their own or not, are the evidence of the *rule*
"``play_song(song=<song>, artist=<artist>)``" over the traffic it would serve. With
:attr:`ProgramRule.pool` (the default), a member whose own lower bound falls short is valid by its
family (:attr:`Program.pooled`) when it has the minimum support, no unexplained argument, and the
family (two templates or more) has a lower bound at the target. The precision that bound promises
is over the family's traffic as a whole, like the router's promise over a cluster's; shadow checks
then watch each program on its own.

    >>> from odia_stream.templates import EntityDictionary, QueryTemplater
    >>> d = EntityDictionary()
    >>> for t, v in [("song", "Lover"), ("artist", "Taylor Swift"), ("song", "Hello"), ("artist", "Adele")]:
    ...     _ = d.add(t, v)
    >>> templater = QueryTemplater(d)
    >>> ev = TemplateEvidence()
    >>> for q, song, artist in [("play Lover by Taylor Swift", "Lover", "Taylor Swift"),
    ...                         ("play hello by adele", "Hello", "Adele")] * 3:
    ...     t = templater.template(q)
    ...     ev.add(observe("play_song", {"song": song, "artist": artist, "source": "app"}, t.slots, d))
    >>> p = best_program(ev, min_support=5, target=0.5, z=1.645)
    >>> p.sources_text()
    {'artist': 'slot:artist/canonical', 'song': 'slot:song/canonical', 'source': 'const:"app"'}
    >>> p.support, p.agreement, p.valid
    (6, 6, True)
    >>> p.assemble(templater.template("play lover by adele").slots, d)
    {'artist': 'Adele', 'song': 'Lover', 'source': 'app'}

A rare template with the same program borrows its family's evidence:

    >>> rare = TemplateEvidence()
    >>> for q in ["play Lover by Taylor Swift on repeat", "play hello by adele on repeat"] * 3:
    ...     t = templater.template(q)
    ...     song, artist = (d.get(ty, v).value for ty, v in t.slots)
    ...     rare.add(observe("play_song", {"song": song, "artist": artist, "source": "app"}, t.slots, d))
    >>> for _ in range(40):  # the common template, seen more often
    ...     ev.add(observe("play_song", {"song": "Lover", "artist": "Taylor Swift", "source": "app"},
    ...                    templater.template("play Lover by Taylor Swift").slots, d))
    >>> rule = ProgramRule(min_support=5, target=0.9, z=1.645)
    >>> families = rule.families({("app", "s", "common"): rule.program(ev), ("app", "s", "rare"): rule.program(rare)})
    >>> alone = ProgramRule(min_support=5, target=0.9, z=1.645, pool=False).program(rare)
    >>> alone.valid, round(alone.lower_bound, 3)
    (False, 0.689)
    >>> p = rule.program(rare, families.of("app", rule.program(rare)))
    >>> p.valid, p.pooled, p.family_templates, p.family_support, round(p.family_lower_bound, 3)
    (True, True, 2, 52, 0.951)
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, NamedTuple

from odia_stream.stats import dominant as dominant_of
from odia_stream.stats import wilson_lower_bound, wilson_upper_bound

from .dictionary import EntityDictionary

__all__ = [
    "ArgSource",
    "AssemblyError",
    "FamilyEvidence",
    "Observation",
    "Program",
    "ProgramFamilies",
    "ProgramRule",
    "TemplateEvidence",
    "best_program",
    "observe",
]

SourceKind = Literal["slot", "canonical", "const"]
#: Preference among sources explaining the same calls equally often.
_PREFERENCE: dict[str, int] = {"slot": 0, "canonical": 1, "const": 2}
#: An argument whose best source explains fewer of the calls than this share is unexplained.
EXPLAINED_SHARE = 0.5


class AssemblyError(ValueError):
    """A program cannot build the call for a query (a slot it reads is missing)."""


class ArgSource(NamedTuple):
    """Where an argument's value comes from (see the module docstring). A named tuple: observations
    hash sets of them for every record, and tuples hash fast."""

    kind: SourceKind
    #: Entity type (slot and canonical sources).
    type: str = ""
    #: Which entity of that type, from 0 (slot and canonical sources).
    index: int = 0
    #: The constant, as canonical JSON (const sources).
    value_json: str = ""

    def __str__(self) -> str:
        if self.kind == "const":
            return f"const:{self.value_json}"
        nth = f"#{self.index + 1}" if self.index else ""
        return f"slot:{self.type}{nth}" + ("/canonical" if self.kind == "canonical" else "")

    @classmethod
    def parse(cls, text: str) -> ArgSource:
        """The inverse of ``str()``; ``ValueError`` for anything else.

        >>> ArgSource.parse("slot:song#2/canonical")
        ArgSource(kind='canonical', type='song', index=1, value_json='')
        >>> str(ArgSource.parse('const:{"a": 1}'))
        'const:{"a": 1}'
        """
        if text.startswith("const:"):
            value = json.loads(text[6:])
            return cls("const", value_json=_canonical_json(value))
        if not text.startswith("slot:"):
            raise ValueError(f"not an argument source: {text!r}")
        body = text[5:]
        kind: SourceKind = "slot"
        if body.endswith("/canonical"):
            kind, body = "canonical", body[: -len("/canonical")]
        etype, _, nth = body.partition("#")
        if not etype or (nth and (not nth.isdigit() or int(nth) < 2)):
            raise ValueError(f"not an argument source: {text!r}")
        return cls(kind, etype, int(nth) - 1 if nth else 0)

    def value(self, slots: Sequence[tuple[str, str]], dictionary: EntityDictionary) -> Any:
        """The value this source gives for a query with ``slots`` (``(type, surface)`` in order)."""
        if self.kind == "const":
            return json.loads(self.value_json)
        same = [surface for etype, surface in slots if etype == self.type]
        if self.index >= len(same):
            raise AssemblyError(f"the query has no {self.type} #{self.index + 1} for {self}")
        surface = same[self.index]
        if self.kind == "slot":
            return surface
        entry = dictionary.get(self.type, surface)
        if entry is None:
            raise AssemblyError(f"{surface!r} is not in the dictionary as a {self.type} (for {self})")
        return entry.value


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))


@dataclass(frozen=True, slots=True)
class Observation:
    """One call of a template: its function and, per argument (sorted by name), the sources that
    reproduce its value."""

    function: str
    arguments: tuple[tuple[str, frozenset[ArgSource]], ...]

    @property
    def names(self) -> tuple[str, ...]:
        """The call's argument names, sorted."""
        return tuple(name for name, _ in self.arguments)

    def to_json(self) -> str:
        """Canonical JSON of the arguments' sources (the function is stored beside it)."""
        return json.dumps(
            {name: sorted(str(s) for s in sources) for name, sources in self.arguments},
            sort_keys=True, ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, function: str, text: str) -> Observation:
        """The inverse of :meth:`to_json`."""
        raw: dict[str, list[str]] = json.loads(text)
        return cls(function, tuple((name, frozenset(ArgSource.parse(s) for s in raw[name])) for name in sorted(raw)))


def observe(
    function: str,
    arguments: Mapping[str, Any],
    slots: Sequence[tuple[str, str]],
    dictionary: EntityDictionary,
) -> Observation:
    """Explain one call of ``function`` for a query whose template has ``slots`` (see the module
    docstring)."""
    surfaces: list[tuple[str, int, str, str | None]] = []
    seen: Counter[str] = Counter()
    for etype, surface in slots:
        entry = dictionary.get(etype, surface)
        surfaces.append((etype, seen[etype], surface, entry.value if entry is not None else None))
        seen[etype] += 1
    explained: list[tuple[str, frozenset[ArgSource]]] = []
    for name in sorted(arguments):
        value = arguments[name]
        sources: set[ArgSource] = set()
        if isinstance(value, str):
            for etype, index, surface, canonical in surfaces:
                if value == surface:
                    sources.add(ArgSource("slot", etype, index))
                if canonical is not None and value == canonical:
                    sources.add(ArgSource("canonical", etype, index))
        if not sources:
            sources.add(ArgSource("const", value_json=_canonical_json(value)))
        explained.append((name, frozenset(sources)))
    return Observation(function, tuple(explained))


@dataclass
class TemplateEvidence:
    """The observed calls of one template, per function (see the module docstring)."""

    max_observations: int = 64
    #: Calls per function (``labels.NO_CALL`` for answers without a call).
    calls: Counter[str] = field(default_factory=Counter)
    #: Distinct observations per function, with their counts.
    observations: dict[str, Counter[Observation]] = field(default_factory=dict)
    #: Calls per function whose observation did not fit under ``max_observations``.
    overflow: Counter[str] = field(default_factory=Counter)

    def add(self, observation: Observation, count: int = 1) -> None:
        """Count a call."""
        self.calls[observation.function] += count
        seen = self.observations.setdefault(observation.function, Counter())
        if observation in seen or len(seen) < self.max_observations:
            seen[observation] += count
        else:
            self.overflow[observation.function] += count

    def add_no_call(self, function: str, count: int = 1) -> None:
        """Count an answer that made no call (``function`` is the no-call marker)."""
        self.calls[function] += count

    def dominant(self) -> str | None:
        """The function called most (ties: alphabetical), ``None`` before any call."""
        return dominant_of(self.calls)


@dataclass(frozen=True, slots=True)
class Program:
    """How to assemble the calls of one template's dominant function, with its evidence."""

    function: str
    sources: tuple[tuple[str, ArgSource], ...]
    #: Answers the large model gave for the template (any function, or no call).
    support: int
    #: Of those, calls the program reproduces exactly (its function, its arguments).
    agreement: int
    lower_bound: float
    #: Arguments whose best source explains fewer than half the calls.
    unexplained: tuple[str, ...]
    valid: bool
    #: Why the program is not valid (empty when it is).
    reason: str = ""
    #: Valid by its family's evidence, not its own (see the module docstring).
    pooled: bool = False
    #: Its family's members (itself among them when its own answers admit the target), their answers
    #: and the answers their programs reproduce (0 when no family was consulted).
    family_templates: int = 0
    family_support: int = 0
    family_agreement: int = 0
    family_lower_bound: float = 0.0

    def sources_text(self) -> dict[str, str]:
        """Each argument's source as text (``slot:song``, ``const:"app"``...)."""
        return {name: str(source) for name, source in self.sources}

    def assemble(self, slots: Sequence[tuple[str, str]], dictionary: EntityDictionary) -> dict[str, Any]:
        """The call's arguments for a query with ``slots``; :class:`AssemblyError` when a slot is missing."""
        return {name: source.value(slots, dictionary) for name, source in self.sources}


def _best_source(candidates: Counter[ArgSource]) -> ArgSource:
    return min(candidates, key=lambda s: (-candidates[s], _PREFERENCE[s.kind], s))


def best_program(evidence: TemplateEvidence, *, min_support: int, target: float, z: float) -> Program | None:
    """The program of the template's dominant function (``None`` when nothing was called), valid
    or not (see the module docstring)."""
    function = evidence.dominant()
    if function is None or function not in evidence.observations:
        return None
    observed = evidence.observations[function]
    support = evidence.calls.total()
    shapes: Counter[tuple[str, ...]] = Counter()
    for obs, n in observed.items():
        shapes[obs.names] += n
    names = min(shapes, key=lambda s: (-shapes[s], s))
    per_arg: dict[str, Counter[ArgSource]] = {name: Counter() for name in names}
    for obs, n in observed.items():
        if obs.names == names:
            for name, sources in obs.arguments:
                for source in sources:
                    per_arg[name][source] += n
    chosen = tuple((name, _best_source(per_arg[name])) for name in names)
    unexplained = tuple(name for name, source in chosen if per_arg[name][source] < EXPLAINED_SHARE * support)
    agreement = sum(
        n
        for obs, n in observed.items()
        if obs.names == names and all(src in sources for (_, src), (_, sources) in zip(chosen, obs.arguments, strict=True))
    )
    bound = wilson_lower_bound(agreement, support, z)
    if support < min_support:
        reason = f"{support} answer(s), fewer than the minimum support {min_support}"
    elif unexplained:
        reason = "unexplained argument(s): " + ", ".join(unexplained)
    elif bound < target:
        reason = f"agreement {agreement}/{support}: lower bound {bound:.4f} below {target}"
    else:
        reason = ""
    return Program(function, chosen, support, agreement, bound, unexplained, not reason, reason)


#: A program family: app, function and each argument's source.
FamilyKey = tuple[str, str, tuple[tuple[str, ArgSource], ...]]


@dataclass(frozen=True, slots=True)
class FamilyEvidence:
    """The pooled evidence of one program family (see the module docstring)."""

    templates: int
    support: int
    agreement: int


class ProgramFamilies:
    """Pooled support and agreement per program family at one target precision, kept up to date
    one template at a time.

    A template is a member of the family of its program (app, function, argument sources) when no
    argument is unexplained and its own answers do not speak against the target (the Wilson upper
    bound of its agreement at confidence ``z`` reaches ``target``): the members are the templates
    the family's evidence may serve, and their support and agreement are pooled whether or not
    each is valid on its own."""

    def __init__(self, target: float, z: float) -> None:
        self.target, self.z = target, z
        self._member: dict[Hashable, tuple[FamilyKey, int, int]] = {}
        self._sums: dict[FamilyKey, tuple[int, int, int]] = {}

    @staticmethod
    def key_of(app: str, program: Program | None) -> FamilyKey | None:
        """The family of ``program`` (``None``: it has no program, or an unexplained argument)."""
        if program is None or program.unexplained:
            return None
        return (app, program.function, program.sources)

    def admits(self, program: Program) -> bool:
        """Whether ``program``'s own answers leave the target possible (a member's condition)."""
        return wilson_upper_bound(program.agreement, program.support, self.z) >= self.target

    @classmethod
    def build(
        cls, programs: Mapping[tuple[str, str, str], Program | None], *, target: float, z: float
    ) -> ProgramFamilies:
        """The families of ``programs`` keyed by ``(app, scope, template)``."""
        families = cls(target, z)
        for key, program in programs.items():
            families.update(key, key[0], program)
        return families

    def update(self, key: Hashable, app: str, program: Program | None) -> None:
        """Count template ``key`` (of ``app``) in the family of its current ``program`` only."""
        old = self._member.pop(key, None)
        if old is not None:
            family, support, agreement = old
            templates, s, a = self._sums[family]
            if templates == 1:
                del self._sums[family]
            else:
                self._sums[family] = (templates - 1, s - support, a - agreement)
        family = self.key_of(app, program)
        if family is None or program is None or not self.admits(program):
            return
        self._member[key] = (family, program.support, program.agreement)
        templates, s, a = self._sums.get(family, (0, 0, 0))
        self._sums[family] = (templates + 1, s + program.support, a + program.agreement)

    def of(self, app: str, program: Program | None) -> FamilyEvidence | None:
        """The pooled evidence of ``program``'s family, if it has one."""
        family = self.key_of(app, program)
        sums = self._sums.get(family) if family is not None else None
        return FamilyEvidence(*sums) if sums is not None else None

    def __len__(self) -> int:
        return len(self._sums)


@dataclass(frozen=True)
class ProgramRule:
    """When a program is valid (:func:`best_program`'s thresholds, or its family's evidence when
    ``pool``) and live (valid, and its function not in ``never``: functions the small path never
    answers)."""

    min_support: int = 5
    target: float = 0.99
    z: float = 1.645
    never: frozenset[str] = frozenset()
    #: Let a program whose own evidence is too thin be valid by its family's (module docstring).
    pool: bool = True

    def program(self, evidence: TemplateEvidence, family: FamilyEvidence | None = None) -> Program | None:
        """The template's program under this rule (``None`` when nothing was called), judged with
        its ``family``'s evidence too when the rule pools and one is given."""
        program = best_program(evidence, min_support=self.min_support, target=self.target, z=self.z)
        return self.with_family(program, family) if program is not None else None

    def families(self, programs: Mapping[tuple[str, str, str], Program | None]) -> ProgramFamilies:
        """The families of ``programs`` (keyed by ``(app, scope, template)``) at this rule's target."""
        return ProgramFamilies.build(programs, target=self.target, z=self.z)

    def with_family(self, program: Program, family: FamilyEvidence | None) -> Program:
        """``program`` with its family's evidence: valid by it where its own falls short and the
        module docstring's conditions hold; otherwise the same validity, the reason extended.
        ``program`` itself when there is no family or the rule does not pool."""
        if family is None or not self.pool:
            return program
        bound = wilson_lower_bound(family.agreement, family.support, self.z)
        shown = replace(program, family_templates=family.templates, family_support=family.support,
                        family_agreement=family.agreement, family_lower_bound=bound)
        if program.valid or program.unexplained or program.support < self.min_support:
            return shown
        own_upper = wilson_upper_bound(program.agreement, program.support, self.z)
        if own_upper < self.target:
            why = f"its own upper bound {own_upper:.4f} is below {self.target} (not pooled with its family)"
        elif family.templates < 2:
            why = "no other template of its family to pool with"
        elif bound < self.target:
            why = (f"its family's ({family.templates} templates, {family.agreement}/{family.support}) lower bound "
                   f"{bound:.4f} is below {self.target} too")
        else:
            return replace(shown, valid=True, pooled=True, reason="")
        return replace(shown, reason=f"{program.reason}; {why}")

    def live(self, program: Program) -> tuple[bool, str]:
        """Whether ``program`` may answer, and why not."""
        if not program.valid:
            return False, program.reason
        if program.function in self.never:
            return False, f"{program.function} is never answered by the small path"
        return True, ""
