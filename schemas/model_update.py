"""``ModelUpdate``: a promoted small-generator version (compacted ``model-updates`` topic)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from schemas.common import WireModel, utc_now


class ModelUpdate(WireModel):
    """Serving hot-swaps to ``version`` on receipt; rollback is an older update re-sent."""

    schema_version: Literal[1] = 1
    generator: str = Field(description="Generator name (the topic key)")
    version: str = Field(description="Content-derived version; never reused")
    adapter_uri: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    base_model: str
    eval_metrics: dict[str, float] = Field(default_factory=dict)
    router_version: str | None = None
    previous_version: str | None = None
    created_at: datetime = Field(default_factory=utc_now)
