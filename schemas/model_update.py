"""The values of the compacted ``model-updates`` topic (key: generator name), and
:class:`AdapterIdentity`, what identifies a trained adapter wherever it is recorded.

- :class:`ModelUpdate`: serve this adapter with this router (a promotion, a router refresh of
  the serving adapter, or a rollback);
- :class:`RouterUpdate`: serve this router with *no* adapter: only the template tier answers
  without the large model (the trainer sends one while no adapter has passed its gate).

:func:`parse_serving_update` reads either.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from schemas.common import WireModel, utc_now


class AdapterIdentity(WireModel):
    """A trained adapter: its version, content hash, base model, evaluation and paired router.

    The one record of an adapter's identity: the registry's entries and ``ModelUpdate`` extend it.
    An adapter's own record names its id ``version``; records about something else that refer to
    it name it ``adapter_version`` (responses, router snapshots).
    """

    version: str = Field(description="Content-derived version; never reused")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    base_model: str
    eval_metrics: dict[str, float] = Field(default_factory=dict)
    router_version: str | None = None
    prompt_format: int = Field(
        default=1, ge=1,
        description="Prompt format the adapter was trained on (serving refuses another); absent: 1",
    )
    created_at: datetime = Field(default_factory=utc_now, description="When the adapter was registered")


class ModelUpdate(AdapterIdentity):
    """Serving hot-swaps to ``version`` on receipt; rollback is an older update re-sent."""

    schema_version: Literal[1] = 1
    generator: str = Field(description="Generator name (the topic key)")
    adapter_uri: str
    previous_version: str | None = None


class RouterUpdate(WireModel):
    """Serve router ``router_version`` with no adapter: requests the router sends small are
    answered by the template tier, or by the large model (route reason ``no_adapter``).

    Applying one unloads the serving adapter, if any, once its requests have drained.
    """

    schema_version: Literal[1] = 1
    kind: Literal["router_only"] = Field(description="Tells it apart from a ModelUpdate on the same topic")
    generator: str = Field(description="Generator name (the topic key)")
    router_version: str = Field(min_length=1)
    reason: str = Field(default="", description="Why the trainer sent a router without an adapter")
    created_at: datetime = Field(default_factory=utc_now)

    @property
    def version(self) -> None:
        """The adapter it serves: none."""
        return None


#: A value of the model-updates topic.
ServingUpdate = Annotated[ModelUpdate | RouterUpdate, Field(union_mode="left_to_right")]

_SERVING_UPDATE: TypeAdapter[ModelUpdate | RouterUpdate] = TypeAdapter(ServingUpdate)


def parse_serving_update(value: bytes | str) -> ModelUpdate | RouterUpdate:
    """A model-updates value as the model it is; raises ``pydantic.ValidationError`` for anything else."""
    return _SERVING_UPDATE.validate_json(value)
