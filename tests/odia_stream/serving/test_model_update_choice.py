"""A batch of model-update values applies only its latest valid update of this generator."""

from __future__ import annotations

from odia_stream.serving.updates import choose_update
from schemas import ModelUpdate, RouterUpdate


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


def test_a_router_sent_alone_is_an_update_like_any_other() -> None:
    alone = RouterUpdate(kind="router_only", generator="small", router_version="r7").model_dump_json().encode()
    got = choose_update([_update("v1"), alone], "small")
    assert isinstance(got.update, RouterUpdate) and got.update.router_version == "r7" and got.update.version is None
    got = choose_update([alone, _update("v2")], "small")
    assert isinstance(got.update, ModelUpdate) and got.update.version == "v2" and got.invalid == ()
    unnamed = b'{"kind": "router_only", "generator": "small"}'  # no router: not an update
    assert [i for i, _ in choose_update([unnamed], "small").invalid] == [0]


def test_tombstones_are_skipped_and_invalid_values_reported_by_index() -> None:
    got = choose_update([_update("v1"), None, b"{not json", b'{"generator": "small"}', None], "small")
    assert got.update is not None and got.update.version == "v1"
    assert got.seen == 3
    assert [i for i, _ in got.invalid] == [2, 3] and all(why for _, why in got.invalid)


def test_nothing_to_apply() -> None:
    assert choose_update([], "small").update is None
    got = choose_update([_update("v1", "other"), None], "small")
    assert got.update is None and got.seen == 1
