"""The keys the learner, the router and the hold-out builder share, defined once.

A record (an FC log) or a request sits in a *scope* (its app, offered tools and conversational
context: :func:`~odia_stream.context.scope_key`). Within a scope, identical queries form a
*query group*, keyed by the normalised query (:data:`GroupKey`). What is embedded is the query's
NER template, normalised (:class:`TemplatedQuery`); a query with entities also belongs to a
*template cluster*, keyed by ``(app, scope, normalised template)`` (:data:`TemplateKey`).

On topics and in error budgets a semantic cluster is ``c`` + 16 hex digits of its integer id
(:func:`cluster_key`), a template cluster ``t`` + 16 hex digits of a hash of its key
(:func:`template_cluster_key`), a template's argument program ``p`` + 16 hex digits
(:func:`program_key`). Group and cluster ids are hashes of the group key
(:func:`group_id_for`, :func:`cluster_id_for`), so they do not depend on arrival order.

>>> from odia_stream.templates import EntityDictionary, QueryTemplater
>>> from schemas import ServeRequest
>>> d = EntityDictionary()
>>> _ = d.add("city", "Paris")
>>> request = ServeRequest(request_id="r1", app="weather", query="Weather in Paris?")
>>> group_key_of(request, "app")
('app:weather', 'weather in paris')
>>> q = TemplatedQuery.of_record(request, "app", QueryTemplater(d))
>>> q.scope, q.text, q.has_entities, q.slots
('app:weather', 'weather in <city>', True, (('city', 'paris'),))
>>> q.template_key
('weather', 'app:weather', 'weather in <city>')
>>> cluster_key(255), parse_cluster_key("c00000000000000ff")
('c00000000000000ff', 255)
>>> template_cluster_key(*q.template_key)[:1], program_key(*q.template_key)[:1], budget_key(255) == cluster_key(255)
('t', 'p', True)
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Protocol

from odia_stream.context import ScopeMode, Turn, scope_key
from odia_stream.normalize import normalize_query
from odia_stream.templates import QueryTemplater, Template

__all__ = [
    "GroupKey",
    "KeyedRecord",
    "Slots",
    "TemplateKey",
    "TemplatedQuery",
    "budget_key",
    "cluster_id_for",
    "cluster_key",
    "group_id_for",
    "group_key",
    "group_key_of",
    "parse_cluster_key",
    "program_key",
    "scope_of",
    "stable_id",
    "template_cluster_key",
    "template_text",
]

#: ``(scope, normalised query)``: the key of a query group.
GroupKey = tuple[str, str]
#: ``(app, scope, normalised template text)``: the key of a template cluster.
TemplateKey = tuple[str, str, str]
#: Entity values of a query as ``(type, normalised value)`` pairs, sorted.
Slots = tuple[tuple[str, str], ...]

_CLUSTER_KEY = re.compile(r"c[0-9a-f]{16}")


class KeyedRecord(Turn, Protocol):
    """What keys are computed from: an FC log (``FCLogEvent``) or a request (``ServeRequest``)."""

    @property
    def app(self) -> str: ...


# -- ids and their text forms ------------------------------------------------------------------
def stable_id(*parts: str) -> int:
    """A 63-bit id derived from text (independent of arrival order)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & ((1 << 63) - 1)


def group_id_for(scope: str, norm: str) -> int:
    """The id of the query group of normalised query ``norm`` in ``scope``."""
    return stable_id("group", scope, norm)


def cluster_id_for(scope: str, norm: str) -> int:
    """The id of a cluster founded by normalised query ``norm`` of ``scope``."""
    return stable_id("cluster", scope, norm)


def cluster_key(cluster_id: int) -> str:
    """The cluster id as it appears on topics and in error budgets (``c`` + 16 hex digits)."""
    return f"c{cluster_id:016x}"


def group_key(group_id: int) -> str:
    """A query group's id as it appears in training records (``g`` + 16 hex digits).

    >>> group_key(255)
    'g00000000000000ff'
    """
    return f"g{group_id:016x}"


def parse_cluster_key(key: str) -> int:
    """The integer id of a cluster key (the inverse of :func:`cluster_key`); ``ValueError`` otherwise."""
    if not _CLUSTER_KEY.fullmatch(key):
        raise ValueError(f"not a cluster key (c + 16 hex digits): {key!r}")
    return int(key[1:], 16)


def template_cluster_key(app: str, scope: str, template: str) -> str:
    """The key of a template cluster (``t`` + 16 hex digits), the key of its error budget."""
    digest = hashlib.blake2b("\x1f".join((app, scope, template)).encode(), digest_size=8)
    return "t" + digest.hexdigest()


def program_key(app: str, scope: str, template: str) -> str:
    """The key of a template's argument program (``p`` + 16 hex digits), the key of its error budget."""
    digest = hashlib.blake2b("\x1f".join(("program", app, scope, template)).encode(), digest_size=8)
    return "p" + digest.hexdigest()


def query_key(scope: str, norm: str) -> str:
    """The key of a known query (``q`` + 16 hex digits): the router's query match and its error budget."""
    digest = hashlib.blake2b("\x1f".join(("query", scope, norm)).encode(), digest_size=8)
    return "q" + digest.hexdigest()


def budget_key(cluster: Hashable) -> str:
    """The error-budget key of a cluster: :func:`cluster_key` of an integer id; cluster keys
    (``c…``), template-cluster keys (``t…``), program keys (``p…``) and query keys (``q…``) pass
    through."""
    if isinstance(cluster, int):
        return cluster_key(cluster)
    if isinstance(cluster, str) and cluster[:1] in ("c", "t", "p", "q"):
        return cluster
    raise ValueError(f"not a cluster id or key: {cluster!r}")


# -- scope, group and template of a record -----------------------------------------------------
def scope_of(record: KeyedRecord, mode: ScopeMode) -> str:
    """The scope ``record`` is clustered and routed in."""
    return scope_key(record.app, record.tools, record.history, mode)


def group_key_of(record: KeyedRecord, mode: ScopeMode) -> GroupKey:
    """``(scope, normalised query)``: the query group ``record`` belongs to."""
    return scope_of(record, mode), normalize_query(record.query)


def template_text(template: Template) -> str:
    """The normalised text of a template: what is embedded and what template clusters share."""
    return normalize_query(template.text)


@dataclass(frozen=True, slots=True)
class TemplatedQuery:
    """A query's scope, its NER template and the normalised template text that is embedded."""

    app: str
    scope: str
    template: Template
    text: str

    @classmethod
    def of(cls, app: str, scope: str, template: Template) -> TemplatedQuery:
        """The templated query of ``template`` (a query of ``app`` in ``scope``)."""
        return cls(app, scope, template, template_text(template))

    @classmethod
    def of_record(cls, record: KeyedRecord, mode: ScopeMode, templater: QueryTemplater) -> TemplatedQuery:
        """The whole chain for a record or request: scope, template (with ``templater``), text."""
        return cls.of(record.app, scope_of(record, mode), templater.template(record.query))

    @property
    def has_entities(self) -> bool:
        """Whether the template replaced at least one entity value."""
        return self.template.has_entities

    @property
    def slots(self) -> Slots:
        """The replaced entity values, normalised and sorted (what near-duplicates must share)."""
        return tuple(sorted((t, normalize_query(v)) for t, v in self.template.slots))

    @property
    def template_key(self) -> TemplateKey | None:
        """The template cluster the query belongs to (``None`` without an entity)."""
        return (self.app, self.scope, self.text) if self.has_entities else None
