"""CachedEmbedder in front of a real embedder (USE: the fastest packaged one)."""

from __future__ import annotations

import numpy as np
import pytest

from odia_stream.embedding import CachedEmbedder, Embedder, UniversalSentenceEncoderEmbedder


def test_hits_misses_and_identical_vectors(use: UniversalSentenceEncoderEmbedder) -> None:
    cached = CachedEmbedder(use, max_entries=100)
    assert isinstance(cached, Embedder)
    assert (cached.model_id, cached.dim) == (use.model_id, use.dim)
    first = cached.embed(["明天北京天气怎么样", "play jazz"])
    assert (cached.hits, cached.misses) == (0, 2)
    second = cached.embed(["play jazz", "navigate home", "明天北京天气怎么样"])
    assert (cached.hits, cached.misses) == (2, 3)
    np.testing.assert_array_equal(second[0], first[1])
    np.testing.assert_array_equal(second[2], first[0])
    np.testing.assert_allclose(second, use.embed(["play jazz", "navigate home", "明天北京天气怎么样"]), atol=1e-5)
    assert second.dtype == np.float32 and second.shape == (3, use.dim)


def test_duplicates_in_one_batch_are_embedded_once(use: UniversalSentenceEncoderEmbedder) -> None:
    cached = CachedEmbedder(use)
    vecs = cached.embed(["a b c", "a b c", "x y z", "a b c"])
    assert (cached.misses, cached.hits) == (2, 2)
    np.testing.assert_array_equal(vecs[0], vecs[3])


def test_lru_eviction_keeps_the_recently_used(use: UniversalSentenceEncoderEmbedder) -> None:
    cached = CachedEmbedder(use, max_entries=2)
    cached.embed(["one"])
    cached.embed(["two"])
    cached.embed(["one"])  # "one" is now the most recent
    cached.embed(["three"])  # evicts "two"
    assert len(cached) == 2
    misses = cached.misses
    cached.embed(["one"])
    assert cached.misses == misses
    cached.embed(["two"])
    assert cached.misses == misses + 1


def test_returned_rows_do_not_alias_the_cache(use: UniversalSentenceEncoderEmbedder) -> None:
    cached = CachedEmbedder(use)
    out = cached.embed(["hello"])
    out[:] = 0
    assert np.linalg.norm(cached.embed(["hello"])[0]) == pytest.approx(1.0, abs=1e-5)


def test_empty_and_disabled_cache(use: UniversalSentenceEncoderEmbedder) -> None:
    cached = CachedEmbedder(use, max_entries=0)
    assert cached.embed([]).shape == (0, use.dim)
    cached.embed(["same"])
    cached.embed(["same"])
    assert (cached.misses, len(cached)) == (2, 0)
    with pytest.raises(ValueError):
        CachedEmbedder(use, max_entries=-1)
