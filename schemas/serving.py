"""``ServeRequest`` and ``ServeResponse``: the request and response topics."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AliasChoices, Field

from schemas.common import ChatMessage, FunctionCall, ToolSpec, WireModel, utc_now

#: ``template``: assembled from the query's entity slots by a learned argument program (no model).
ServedBy = Literal["template", "small", "large", "none"]


class ServeRequest(WireModel):
    """A request to answer with a function call; keyed by ``request_id``."""

    schema_version: Literal[1] = 1
    request_id: str = Field(min_length=1, max_length=200)
    app: str = "default"
    query: str = Field(min_length=1, max_length=20_000)
    history: list[ChatMessage] = Field(default_factory=list, max_length=64)
    tools: list[ToolSpec] = Field(default_factory=list, max_length=512)
    reply_topic: str | None = Field(default=None, description="Where to answer; the default response topic if unset")
    created_at: datetime = Field(default_factory=utc_now)


class LatencyBreakdown(WireModel):
    """Milliseconds spent in each stage of answering."""

    route_ms: float = Field(ge=0)
    generate_ms: float = Field(ge=0)
    validate_ms: float = Field(ge=0)
    total_ms: float = Field(ge=0)
    template_ms: float = Field(default=0.0, ge=0, description="Template tier: lookup, assembly and validation")


class ServeResponse(WireModel):
    """Exactly one per request, errors included (``error`` set, ``served_by`` may be ``none``)."""

    schema_version: Literal[1] = 1
    request_id: str
    call: FunctionCall | None
    served_by: ServedBy
    route_reason: str
    adapter_version: str | None = Field(
        default=None,
        validation_alias=AliasChoices("adapter_version", "generator_version"),
        description="The adapter (content version) the small model answered with, or would have; "
        "records written before the rename say generator_version",
    )
    router_version: str | None = None
    program: str | None = Field(default=None, description="Argument program that assembled a template answer (p<hex>)")
    large_model: str | None = Field(default=None, description="Large model that answered; says 'simulated' when replayed")
    latency: LatencyBreakdown
    error: str | None = None
    answered_at: datetime = Field(default_factory=utc_now)
