"""``FCLogEvent``: one function-call log record, the value of the ``fc-logs`` topic."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from schemas.common import ChatMessage, FunctionCall, ToolSpec, WireModel, check_call_offered, utc_now


class FCLogEvent(WireModel):
    """What the large model was asked and what it called.

    ``query`` is the latest user turn; ``history`` holds the messages before it (the domain
    keeps the last three turns), including earlier assistant ``tool_calls`` and tool results.
    ``call`` is ``None`` when the large model called nothing. ``call.name`` must be one of
    ``tools``.
    """

    schema_version: Literal[1] = 1
    event_id: str = Field(min_length=1, max_length=200, description="Unique id; replays are idempotent by it")
    timestamp: datetime = Field(default_factory=utc_now)
    app: str = Field(default="default", min_length=1, max_length=100, description="Domain/app the log belongs to")
    query: str = Field(max_length=20_000)
    history: list[ChatMessage] = Field(default_factory=list, max_length=64)
    tools: list[ToolSpec] = Field(default_factory=list, max_length=512)
    call: FunctionCall | None = None
    latency_ms: float | None = Field(default=None, ge=0, description="The large model's latency, if logged")
    source: str | None = Field(default=None, max_length=500, description="Where the record came from (dataset, file, id)")

    @model_validator(mode="after")
    def _query_and_call_are_meaningful(self) -> FCLogEvent:
        from pydantic_core import PydanticCustomError

        if not self.query.strip():
            raise PydanticCustomError("empty_query", "query is empty or whitespace")
        check_call_offered(self.call, self.tools)
        return self
