"""``RetrainTrigger``: enough new simple data (or label flips) to retrain an app's generator."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from schemas.common import WireModel, utc_now

TriggerReason = Literal["new_examples", "labels_changed", "manual"]


class RetrainTrigger(WireModel):
    """Sent by the agents, consumed by the trainer; keyed by ``app``."""

    schema_version: Literal[1] = 1
    trigger_id: str
    app: str = "default"
    reason: TriggerReason
    new_examples: int = Field(ge=0, description="Simple-cluster training examples added since the last trigger")
    total_examples: int = Field(ge=0)
    simple_clusters: int = Field(ge=0)
    flipped_clusters: list[str] = Field(default_factory=list, description="Clusters whose label changed")
    store_version: int = Field(ge=0, description="Learner state version the trigger was cut at")
    embedder_id: str
    created_at: datetime = Field(default_factory=utc_now)
