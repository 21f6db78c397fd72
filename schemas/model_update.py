"""``ModelUpdate``: a promoted small-generator version (compacted ``model-updates`` topic), and
:class:`AdapterIdentity`, what identifies a trained adapter wherever it is recorded."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

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
