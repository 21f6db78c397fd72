"""Stage-2 features: the query embedding plus cheap context features of the request.

Context decides follow-up turns ("the city is Guangzhou" after a weather call, "换一首" after a
music call), so the classifier sees whether there is history, whether the previous turn called
a function (and which one, hashed), whether the assistant just asked something, reference or
correction markers in the query, and how many tools are offered.

>>> has_reference_marker("more of these please"), has_reference_marker("换一首"), has_reference_marker("play jazz")
(True, True, False)
>>> context_features("换一首", [], 3)[:6].tolist()
[0.0, 0.0, 0.0, 1.0, 0.3333333432674408, 0.0]
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence

import numpy as np

from odia_stream.context import context_signature, previous_call
from schemas import ChatMessage

#: Buckets of the hashed previous-call feature.
PREVIOUS_CALL_BUCKETS = 16

#: Names of the context features, in vector order.
CONTEXT_FEATURES: tuple[str, ...] = (
    "has_history",
    "has_previous_call",
    "assistant_asked",
    "reference_marker",
    "tools_log",
    "single_tool",
    *(f"previous_call_{i}" for i in range(PREVIOUS_CALL_BUCKETS)),
)

#: English pronouns, ellipses and corrections that point back at earlier turns (whole words).
_EN_MARKERS = (
    "this one", "that one", "these", "those", "more of these", "more like", "the same", "same one", "another one",
    "one more", "again", "them", "previous", "last one", "next one", "instead", "change it", "not that",
    "i meant", "i mean",
)
#: Chinese markers (substrings): demonstratives, "change to / another / again", corrections.
_ZH_MARKERS = (
    "这个", "那个", "这首", "那首", "这些", "那些", "这家", "那家", "这部", "那部", "这里", "那里", "它", "他们", "她们",
    "换一", "换个", "换成", "改成", "改为", "再来", "再放", "再找", "还是", "上一", "下一", "刚才", "刚刚", "之前", "先前",
    "同样", "一样的", "说错", "不对", "应该是",
)
_EN_PATTERN = re.compile(r"\b(?:" + "|".join(re.escape(m) for m in sorted(_EN_MARKERS, key=len, reverse=True)) + r")\b")
_TOOLS_LOG_CAP = math.log1p(63)


def has_reference_marker(query: str) -> bool:
    """Whether ``query`` refers back to earlier turns ("this one", "more of these", "换一首", "说错了")."""
    text = query.casefold()
    return bool(_EN_PATTERN.search(text)) or any(m in text for m in _ZH_MARKERS)


def _bucket(name: str) -> int:
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "big") % PREVIOUS_CALL_BUCKETS


def context_features(query: str, history: Sequence[ChatMessage], n_tools: int) -> np.ndarray:
    """The context features of a request (float32, ``len(CONTEXT_FEATURES)``, values in [0, 1])."""
    if n_tools < 0:
        raise ValueError(f"n_tools must be >= 0, got {n_tools}")
    out = np.zeros(len(CONTEXT_FEATURES), dtype=np.float32)
    prev = previous_call(history)
    out[0] = 1.0 if history else 0.0
    out[1] = 1.0 if prev else 0.0
    out[2] = 1.0 if context_signature(history).endswith(":ask") else 0.0
    out[3] = 1.0 if has_reference_marker(query) else 0.0
    out[4] = min(1.0, math.log1p(n_tools) / _TOOLS_LOG_CAP)
    out[5] = 1.0 if n_tools == 1 else 0.0
    if prev:
        out[6 + _bucket(prev)] = 1.0
    return out


def feature_matrix(embeddings: np.ndarray, contexts: np.ndarray) -> np.ndarray:
    """Rows of ``[embedding, context features]`` (float32, ``(n, dim + len(CONTEXT_FEATURES))``)."""
    e = np.asarray(embeddings, dtype=np.float32)
    c = np.asarray(contexts, dtype=np.float32)
    if e.ndim != 2 or c.ndim != 2 or len(e) != len(c) or c.shape[1] != len(CONTEXT_FEATURES):
        raise ValueError(f"expected (n, dim) embeddings and (n, {len(CONTEXT_FEATURES)}) contexts, got {e.shape} and {c.shape}")
    return np.concatenate([e, c], axis=1)
