"""What serving needs from a router: a decision per request, and agreement feedback per cluster.

:class:`odia_stream.routing.Router` satisfies this protocol; serving depends on the protocol
only, so a router snapshot of any version (or another implementation, e.g. backed by a Qdrant
server) can be swapped in with its generator.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Protocol, runtime_checkable

from odia_stream.routing.template_tier import TemplateAnswer
from schemas import ServeRequest

__all__ = ["RouteDecision", "RouterLike", "RouterLoader"]


class RouteDecision(Protocol):
    """Where one request goes and why (the fields serving reads from the router's decision)."""

    @property
    def route(self) -> str:
        """``small`` or ``large``."""
        ...

    @property
    def function(self) -> str | None:
        """The function the router expects the small model to call."""
        ...

    @property
    def reason(self) -> str:
        """Short code of why (``cluster_match``, ``below_threshold``, ``error_budget``, ...)."""
        ...

    @property
    def cluster_id(self) -> Hashable | None:
        """The cluster the decision rests on, if any (the key of agreement feedback)."""
        ...

    @property
    def router_version(self) -> str:
        """The router snapshot that decided."""
        ...


@runtime_checkable
class RouterLike(Protocol):
    """A versioned router: ``decide`` per request, ``record_agreement`` from shadow checks."""

    @property
    def version(self) -> str:
        """The router snapshot's version."""
        ...

    def decide(self, request: ServeRequest) -> RouteDecision:
        """Route ``request`` (fast: milliseconds, embedding included)."""
        ...

    def model_answers(self, function: str | None) -> bool:
        """Whether the small model may answer a request routed small with ``function`` (per-function trust)."""
        ...

    def template_answer(self, request: ServeRequest, function: str | None, *, check_required: bool = True) -> TemplateAnswer:
        """The template tier's answer to ``request`` routed small with ``function``, or why there is none."""
        ...

    def record_agreement(self, cluster_id: Hashable, agreed: bool) -> None:
        """Record whether the small model agreed with the large one on a request of ``cluster_id``."""
        ...


#: Loads the router snapshot of a version (named by a ``ModelUpdate``'s ``router_version``).
RouterLoader = Callable[[str], RouterLike]
