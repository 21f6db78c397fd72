"""Current generator and router versions: promoted (model-updates topic) and serving (responses)."""

from __future__ import annotations

from datetime import UTC, datetime

from odia_stream.dashboard.compacted import CompactedTable
from odia_stream.dashboard.view import PromotedModel, ServingVersions
from schemas import ModelUpdate, RouterUpdate, ServeResponse


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


class VersionBoard:
    """The latest ``ModelUpdate`` (or ``RouterUpdate``) per generator and the newest versions named by responses.

    ``model-updates`` is compacted and keyed by generator: the last record per key wins (a
    rollback is an older update re-sent, so it wins too), a tombstone removes the generator.
    Serving versions are the generator and router versions of the responses with the newest
    ``answered_at`` that name one.
    """

    def __init__(self) -> None:
        self._promoted: CompactedTable[ModelUpdate | RouterUpdate] = CompactedTable(lambda u: u.generator, "generator")
        self._generator: tuple[str, datetime] | None = None
        self._router: tuple[str, datetime] | None = None

    def apply_update(self, key: str, update: ModelUpdate | RouterUpdate | None) -> None:
        """Fold one record of the model-updates topic; ``None`` is a tombstone."""
        self._promoted.apply(key, update)

    def apply_response(self, response: ServeResponse) -> None:
        """Note the generator and router versions a response names, each if it is the newest so far.

        The two are tracked apart: a response the large model answered may name the router only.
        """
        at = _aware(response.answered_at)
        if response.adapter_version is not None and (self._generator is None or at >= self._generator[1]):
            self._generator = (response.adapter_version, at)
        if response.router_version is not None and (self._router is None or at >= self._router[1]):
            self._router = (response.router_version, at)

    def promoted(self) -> list[PromotedModel]:
        """One entry per generator, by name."""
        return [PromotedModel.of(u) for _, u in self._promoted.items()]

    @property
    def serving(self) -> ServingVersions | None:
        """The newest generator and router versions seen in responses, or None before any."""
        if self._generator is None and self._router is None:
            return None
        seen = [v[1] for v in (self._generator, self._router) if v is not None]
        return ServingVersions(
            adapter_version=self._generator[0] if self._generator else None,
            router_version=self._router[0] if self._router else None,
            answered_at=max(seen),
        )
