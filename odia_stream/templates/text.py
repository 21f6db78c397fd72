"""Text normalisation shared by the entity dictionary, the matcher and the learner.

Every string that takes part in matching (dictionary values *and* queries) goes through
:func:`normalize_text`, so the two sides always agree:

* the text is cut into *chunks*: a character plus the combining marks that follow it, or
  one run of whitespace;
* each chunk is NFKC-normalised and case-folded (``str.casefold``), a whitespace run
  becomes a single ``" "``.

Because normalisation is chunk-local, :class:`NormalizedText` can map any span of the
normalised text that starts and ends on chunk borders back to the original string.

    >>> nt = NormalizedText.of("Play  ＪＡＹ Chou")
    >>> nt.text
    'play jay chou'
    >>> nt.to_original(5, 13)
    (6, 14)
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = [
    "NormalizedText",
    "is_boundary_char",
    "normalize_text",
    "normalize_type",
]

# ASCII text that needs nothing but lower() (no whitespace runs, no exotic whitespace).
_ASCII_NEEDS_WORK = re.compile(r"[\t\n\r\x0b\x0c\x1c-\x1f]| {2}")
_CHUNK_CACHE: dict[str, str] = {}
_CHUNK_CACHE_MAX = 200_000
_BAD_TYPE_CHARS = re.compile(r"[<>\s]")
_TYPE_CACHE: dict[str, str] = {}


def _norm_chunk(chunk: str) -> str:
    out = _CHUNK_CACHE.get(chunk)
    if out is None:
        out = unicodedata.normalize("NFKC", chunk).casefold()
        if len(_CHUNK_CACHE) >= _CHUNK_CACHE_MAX:
            _CHUNK_CACHE.clear()
        _CHUNK_CACHE[chunk] = out
    return out


def _chunks(text: str) -> list[tuple[int, int]]:
    """Chunk borders: a base character with its trailing combining marks, or a whitespace run."""
    combining = unicodedata.combining
    bounds: list[tuple[int, int]] = []
    n = len(text)
    i = 0
    while i < n:
        j = i + 1
        if text[i].isspace():
            while j < n and text[j].isspace():
                j += 1
        else:
            while j < n and combining(text[j]):
                j += 1
        bounds.append((i, j))
        i = j
    return bounds


@dataclass(frozen=True, slots=True)
class NormalizedText:
    """A normalised string plus the map back to the original.

    ``starts[p]`` / ``ends[p]`` are the original offsets of the chunk that produced
    normalised character ``p``; both are ``None`` when the mapping is the identity.
    """

    original: str
    text: str
    starts: list[int] | None = None
    ends: list[int] | None = None

    @classmethod
    def of(cls, original: str) -> NormalizedText:
        """Normalise ``original`` (see the module docstring)."""
        if original.isascii() and _ASCII_NEEDS_WORK.search(original) is None:
            return cls(original, original.lower())
        parts: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        identity = True
        for s, e in _chunks(original):
            chunk = original[s:e]
            norm = " " if chunk[0].isspace() else _norm_chunk(chunk)
            if identity and (e - s != 1 or len(norm) != 1):
                identity = False
            parts.append(norm)
            starts.extend([s] * len(norm))
            ends.extend([e] * len(norm))
        text = "".join(parts)
        if identity:
            return cls(original, text)
        return cls(original, text, starts, ends)

    def is_aligned(self, start: int, end: int) -> bool:
        """True when normalised span ``[start, end)`` begins and ends on chunk borders."""
        st = self.starts
        if st is None:
            return True
        if start > 0 and st[start] == st[start - 1]:
            return False
        return not (end < len(st) and st[end] == st[end - 1])

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Original offsets of normalised span ``[start, end)`` (must be non-empty and aligned)."""
        if self.starts is None or self.ends is None:
            return start, end
        return self.starts[start], self.ends[end - 1]


def normalize_text(text: str) -> str:
    """The normalised form used as a matching key (chunk-wise NFKC + casefold, whitespace squeezed)."""
    return NormalizedText.of(text).text


def is_boundary_char(ch: str) -> bool:
    """True for word characters of space-separated alphabetic scripts (Latin, Greek, Cyrillic...).

    A dictionary value that starts (ends) with such a character only matches when the
    character before (after) it is not one too. CJK ideographs, kana, Hangul, Thai and
    other scripts written without spaces between words never need a boundary.
    """
    if ch == "_":
        return True
    if not ch.isalnum():
        return False
    cp = ord(ch)
    return cp < 0x0590 or 0x1E00 <= cp <= 0x1FFF or 0x2C60 <= cp <= 0x2C7F or 0xA720 <= cp <= 0xA7FF


def normalize_type(entity_type: str) -> str:
    """Normalise an entity type name: strip and lowercase.

    Raises ``ValueError`` for names that are empty or contain whitespace, ``<`` or ``>``
    (they would break the ``<type>`` placeholders of templates).
    """
    cached = _TYPE_CACHE.get(entity_type) if isinstance(entity_type, str) else None
    if cached is not None:
        return cached
    if not isinstance(entity_type, str):
        raise TypeError(f"entity type must be a string, got {type(entity_type).__name__}")
    name = entity_type.strip().lower()
    if not name:
        raise ValueError("entity type must not be empty")
    if _BAD_TYPE_CHARS.search(name):
        raise ValueError(f"entity type {entity_type!r} must not contain whitespace, '<' or '>'")
    if len(_TYPE_CACHE) < 10_000:
        _TYPE_CACHE[entity_type] = name
    return name
