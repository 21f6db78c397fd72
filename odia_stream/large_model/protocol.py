"""What every large model offers the serving path: one call per request, with its latency."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from schemas import FunctionCall, ServeRequest


class LargeModelAnswer(BaseModel):
    """The large model's answer to one request.

    ``call`` is ``None`` when the model called nothing; ``reason`` then says why (the model's
    text, a call that names no offered tool, a request the replay model has no record of).
    ``simulated`` is true for the replay model, whose ``model`` name says so too.
    """

    model_config = ConfigDict(frozen=True)

    call: FunctionCall | None
    model: str
    latency_ms: float = Field(ge=0)
    simulated: bool
    reason: str | None = None


class LargeModelError(RuntimeError):
    """The large model could not be asked or gave no usable response (after retries)."""


@runtime_checkable
class LargeModel(Protocol):
    """A large model that answers a :class:`ServeRequest` with at most one function call."""

    @property
    def name(self) -> str:
        """The model's name as responses report it (contains ``simulated`` for a simulation)."""
        ...

    async def call(self, request: ServeRequest) -> LargeModelAnswer:
        """Answer ``request``; raises :class:`LargeModelError` when no answer could be had."""
        ...

    async def aclose(self) -> None:
        """Release connections; the model is not used afterwards."""
        ...
