"""Which model update of a batch read off the model-updates topic to apply (no Kafka).

A batch (values in log order) applies only its latest update for this generator: earlier ones
would be replaced at once. Tombstones (no value: the topic is compacted) are skipped and not
counted; a value that is neither a :class:`~schemas.ModelUpdate` nor a
:class:`~schemas.RouterUpdate` (a router with no adapter) is reported as invalid (by its
index in the batch, with why) and skipped; updates for another generator are skipped. An update
for another base model is not filtered here: the backend refuses it (``ignored``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from schemas import ModelUpdate, RouterUpdate, parse_serving_update

__all__ = ["UpdateChoice", "choose_update"]


@dataclass(frozen=True)
class UpdateChoice:
    """What a batch of model-update values holds for one generator."""

    #: The last valid update of the generator (``None``: nothing to apply).
    update: ModelUpdate | RouterUpdate | None
    #: Values that were not tombstones.
    seen: int
    #: ``(index in the batch, why)`` of each value that is not a ``ModelUpdate``.
    invalid: tuple[tuple[int, str], ...] = ()


def choose_update(values: Sequence[bytes | None], generator: str) -> UpdateChoice:
    """The update of ``generator`` to apply from ``values`` (see the module docstring)."""
    latest: ModelUpdate | RouterUpdate | None = None
    seen = 0
    invalid: list[tuple[int, str]] = []
    for i, value in enumerate(values):
        if value is None:
            continue
        seen += 1
        try:
            update = parse_serving_update(value)
        except ValidationError as exc:
            invalid.append((i, exc.errors()[0]["msg"]))
            continue
        if update.generator == generator:
            latest = update
    return UpdateChoice(latest, seen, tuple(invalid))
