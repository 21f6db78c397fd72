"""Build the configured large model from :class:`~odia_stream.settings.LargeModelSettings`."""

from __future__ import annotations

from odia_stream.large_model.openai_client import OpenAIChatLargeModel
from odia_stream.large_model.protocol import LargeModel
from odia_stream.large_model.replay import ReplaySimulatedLargeModel
from odia_stream.settings import OdiaSettings

__all__ = ["build_large_model"]


def build_large_model(settings: OdiaSettings, *, sleep: bool = True) -> LargeModel:
    """The large model ``settings.large_model`` names.

    ``sleep`` applies to the replay model only (``False``: report drawn latencies, don't wait).
    """
    lm = settings.large_model
    if lm.kind == "openai":
        if not lm.model:
            raise ValueError("large_model.kind is 'openai' but no model is set (ODIA_LARGE_MODEL__MODEL)")
        return OpenAIChatLargeModel(
            lm.base_url,
            lm.model,
            api_key=lm.api_key.get_secret_value() if lm.api_key else None,
            timeout_s=lm.timeout_s, max_retries=lm.max_retries, backoff_s=lm.backoff_s,
            tool_choice=lm.tool_choice, temperature=lm.temperature, max_tokens=lm.max_tokens, ca_file=lm.ca_file,
        )
    if lm.replay_dataset is None:
        raise ValueError(
            "large_model.kind is 'replay' (a simulated large model) but no dataset is set "
            "(ODIA_LARGE_MODEL__REPLAY_DATASET: a HammerBench, SNIPS or FC-log JSONL path)"
        )
    return ReplaySimulatedLargeModel.from_dataset(
        lm.replay_dataset, median_ms=lm.replay_median_ms, p90_ms=lm.replay_p90_ms, seed=lm.seed, sleep=sleep
    )
