"""What the router decided for one request, and why (a small set of reason codes serving counts)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

#: Where a request goes: the small distilled model or the large one.
Route = Literal["small", "large"]

#: Which part of the router decided: a safety rule, the known query, stage 1 (cluster or template match), stage 2.
Stage = Literal["safety", "query", "match", "template", "classifier"]


class Reason(StrEnum):
    """Why a request went where it went (``str`` values, so they log and count as plain text)."""

    #: Stage 0: the very query is known and the large model answered it with one function.
    QUERY_MATCH = "query_match"
    #: Stage 1: a simple cluster of the request's scope is close enough.
    CLUSTER_MATCH = "cluster_match"
    #: Stage 1: the query's NER template belongs to a simple template cluster.
    TEMPLATE_MATCH = "template_match"
    #: Stage 2: the classifier's score reached the calibrated threshold.
    CLASSIFIER = "classifier"
    #: Nothing matched and the classifier's score stayed under its threshold.
    BELOW_THRESHOLD = "below_threshold"
    #: The classifier's best class is "complex" (no single function).
    PREDICTED_COMPLEX = "predicted_complex"
    #: The nearest cluster is close enough and complex (no dominant function).
    COMPLEX_CLUSTER = "complex_cluster"
    #: Safety: the predicted function is not among the request's offered tools.
    FUNCTION_NOT_OFFERED = "function_not_offered"
    #: Safety: the predicted function is listed in ``router.never_small``.
    NEVER_SMALL = "never_small"
    #: Safety: no tools, an app or tool set the router never saw, or a changed function schema.
    UNKNOWN_TOOLS = "unknown_tools"
    #: The cluster's agreement lower bound fell under the error-budget target.
    ERROR_BUDGET = "error_budget"
    #: The query is empty once normalised.
    NO_QUERY = "no_query"


#: Reasons that send a request to the small model.
SMALL_REASONS: frozenset[Reason] = frozenset(
    {Reason.QUERY_MATCH, Reason.CLUSTER_MATCH, Reason.TEMPLATE_MATCH, Reason.CLASSIFIER}
)


@dataclass(frozen=True, slots=True)
class Decision:
    """One routing decision.

    ``function`` is the function the small model is expected to call (also set on most large
    decisions, to say what was rejected); ``score`` is the deciding stage's score (the known
    query's share bound, cosine similarity, template share bound or classifier probability);
    ``cluster_id`` is the key the decision rests on (``q<hex>`` known query, ``c<hex>`` cluster,
    ``t<hex>`` template cluster), the key of agreement feedback. ``embed_ms`` is the time
    spent embedding, ``decide_ms`` the whole decision, embedding included.
    """

    route: Route
    reason: Reason
    function: str | None
    score: float | None
    stage: Stage
    cluster_id: str | None
    embed_ms: float
    decide_ms: float
    router_version: str

    def __post_init__(self) -> None:
        if (self.route == "small") != (self.reason in SMALL_REASONS):
            raise ValueError(f"route {self.route!r} does not fit reason {self.reason.value!r}")
        if self.route == "small" and not self.function:
            raise ValueError("a small-model decision needs the function it expects")
