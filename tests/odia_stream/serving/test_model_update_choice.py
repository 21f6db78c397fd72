"""A batch of model-update values applies only its latest valid update of this generator."""

from __future__ import annotations

from odia_stream.serving.updates import choose_update
from schemas import ModelUpdate


def _update(version: str, generator: str = "small") -> bytes:
    return (
        ModelUpdate(
            generator=generator,
            version=version,
            base_model="HuggingFaceTB/SmolLM2-135M-Instruct",
            adapter_uri=f"file:///adapters/{version}",
            sha256="0" * 64,
        )
        .model_dump_json()
        .encode()
    )


def test_the_last_update_of_the_generator_wins() -> None:
    got = choose_update([_update("v1"), _update("v2"), _update("x9", "other")], "small")
    assert got.update is not None and got.update.version == "v2"
    assert got.seen == 3 and got.invalid == ()


def test_tombstones_are_skipped_and_invalid_values_reported_by_index() -> None:
    got = choose_update([_update("v1"), None, b"{not json", b'{"generator": "small"}', None], "small")
    assert got.update is not None and got.update.version == "v1"
    assert got.seen == 3
    assert [i for i, _ in got.invalid] == [2, 3] and all(why for _, why in got.invalid)


def test_nothing_to_apply() -> None:
    assert choose_update([], "small").update is None
    got = choose_update([_update("v1", "other"), None], "small")
    assert got.update is None and got.seen == 1
