"""The serving version pair (adapter + router) and its atomic switch.

A request captures :attr:`VersionHolder.current` once, when it starts, and uses that pair to the
end; a hot swap replaces the pair with one reference assignment, so a request never mixes two
versions. The holder counts in-flight requests per adapter version, so an old adapter is unloaded
only after the requests that started on it have finished.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from odia_stream.generation.protocol import AdapterRef
from odia_stream.serving.router_api import RouterLike
from schemas import ModelUpdate, RouterUpdate

__all__ = ["ActiveVersion", "VersionHolder"]


@dataclass(frozen=True)
class ActiveVersion:
    """An immutable serving pair: the adapter the small model answers with, and its router.

    ``router`` ``None``: nothing to route with yet (every request goes large); ``adapter`` ``None``
    with a router (a :class:`~schemas.RouterUpdate`): only the template tier answers small.
    """

    adapter: AdapterRef | None = None
    router: RouterLike | None = None
    update: ModelUpdate | RouterUpdate | None = None
    activated_at: float = field(default_factory=time.time)

    @property
    def adapter_version(self) -> str | None:
        """The adapter's version (``None`` before the first adapter)."""
        return self.adapter.version if self.adapter is not None else None

    @property
    def router_version(self) -> str | None:
        """The router's version (``None`` without a router)."""
        return self.router.version if self.router is not None else None


class VersionHolder:
    """Holds the current :class:`ActiveVersion`; switched atomically, in-flight counted per version."""

    def __init__(self, initial: ActiveVersion | None = None) -> None:
        self._current = initial or ActiveVersion()
        self._in_flight: Counter[str | None] = Counter()
        self._idle: dict[str | None, asyncio.Event] = {}

    @property
    def current(self) -> ActiveVersion:
        """The pair new requests start on."""
        return self._current

    def switch(self, new: ActiveVersion) -> ActiveVersion:
        """Make ``new`` current (one reference assignment) and return the previous pair."""
        previous, self._current = self._current, new
        return previous

    @contextmanager
    def acquire(self) -> Iterator[ActiveVersion]:
        """The current pair, counted as in flight until the block exits."""
        active = self._current
        key = active.adapter_version
        self._in_flight[key] += 1
        try:
            yield active
        finally:
            self._in_flight[key] -= 1
            if self._in_flight[key] <= 0:
                del self._in_flight[key]
                event = self._idle.pop(key, None)
                if event is not None:
                    event.set()

    def in_flight(self, version: str | None) -> int:
        """Requests running on ``version`` now."""
        return self._in_flight.get(version, 0)

    async def wait_drained(self, version: str | None, timeout_s: float) -> bool:
        """Wait until no request runs on ``version``; ``False`` when ``timeout_s`` passed first."""
        if self._in_flight.get(version, 0) == 0:
            return True
        event = self._idle.setdefault(version, asyncio.Event())
        try:
            await asyncio.wait_for(event.wait(), timeout_s)
        except TimeoutError:
            return False
        return True
