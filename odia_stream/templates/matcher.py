"""Finding dictionary entities in a query with an Aho-Corasick automaton (pyahocorasick).

Matching rules:

* query and values are compared in normalised form (NFKC + casefold, whitespace runs
  squeezed; see :mod:`odia_stream.templates.text`), spans are reported on the original;
* leftmost-longest, non-overlapping: among candidates the earliest start wins, then the
  longest; later candidates overlapping a chosen span are dropped;
* a value whose first (last) character belongs to a space-separated alphabetic script
  (Latin, Greek, Cyrillic, digits...) must not be preceded (followed) by such a character,
  so ``pop`` does not match inside ``popular``; CJK values need no boundaries;
* a value recorded under several types gets its most frequent type (tie: alphabetical);
  :meth:`EntityMatcher.types_of` lists all of them, preferred first.

The matcher follows its dictionary lazily: on the next :meth:`~EntityMatcher.match` after
a change it rebuilds. New values go to a small *delta* automaton (cheap to rebuild) that is
folded into the main automaton once it holds ``delta_limit`` values; pyahocorasick cannot
extend a finished automaton without recomputing all failure links, which for 100k values
costs ~0.3 s, so the delta keeps a stream of learned values cheap. Removals rebuild fully.

    >>> from odia_stream.templates import EntityDictionary, EntityMatcher
    >>> d = EntityDictionary(); _ = d.add("singer", "周杰伦"); _ = d.add("song", "稻香")
    >>> for span in EntityMatcher(d).match("播放周杰伦的稻香"):
    ...     print(span)
    EntitySpan(start=2, end=5, type='singer', value='周杰伦')
    EntitySpan(start=6, end=8, type='song', value='稻香')
"""

from __future__ import annotations

import threading
from typing import Any, NamedTuple

import ahocorasick

from .dictionary import EntityDictionary
from .text import NormalizedText, is_boundary_char

__all__ = ["EntityMatcher", "EntitySpan"]


class EntitySpan(NamedTuple):
    """An entity found in a query: ``query[start:end] == value``."""

    start: int
    end: int
    type: str
    value: str


def _build(keys: list[str]) -> Any:
    if not keys:
        return None
    automaton = ahocorasick.Automaton(ahocorasick.STORE_ANY)
    add = automaton.add_word
    for key in keys:
        add(key, key)
    automaton.make_automaton()
    return automaton


class EntityMatcher:
    """Leftmost-longest entity matching over an :class:`EntityDictionary`.

    ``delta_limit``: how many values added since the last full build are kept in the
    small delta automaton before everything is rebuilt into one.
    """

    def __init__(self, dictionary: EntityDictionary, *, delta_limit: int = 1024) -> None:
        if delta_limit < 0:
            raise ValueError("delta_limit must be >= 0")
        self.dictionary = dictionary
        self.delta_limit = delta_limit
        self._lock = threading.Lock()
        self._base: Any = None
        self._delta: Any = None
        self._base_size = 0
        self._delta_keys: list[str] = []
        self._seen_version = -1
        self._seen_epoch = -1
        self._log_pos = 0
        self.full_builds = 0
        self.delta_builds = 0

    # ------------------------------------------------------------------ building
    def rebuild(self) -> None:
        """Build the automaton from scratch now."""
        with self._lock:
            self._full_build()

    def _full_build(self) -> None:
        d = self.dictionary
        version, epoch = d.version, d._epoch
        keys = d.keys()
        self._base = _build(keys)
        self._base_size = len(keys)
        self._delta, self._delta_keys = None, []
        self._log_pos = len(d._new_keys)
        self._seen_version, self._seen_epoch = version, epoch
        self.full_builds += 1

    def refresh(self) -> None:
        """Bring the automaton up to date with the dictionary (done automatically by :meth:`match`)."""
        d = self.dictionary
        if d.version == self._seen_version:
            return
        with self._lock:
            if d.version == self._seen_version:
                return
            if self._seen_version < 0 or self._seen_epoch != d._epoch:
                self._full_build()
                return
            version = d.version  # read before the log: a concurrent add is picked up next time
            new_keys = d._new_keys[self._log_pos :]
            if new_keys:
                if len(self._delta_keys) + len(new_keys) > self.delta_limit:
                    self._full_build()
                    return
                delta_keys = self._delta_keys + new_keys
                self._delta = _build(delta_keys)  # swap in a fresh object: safe for concurrent readers
                self._delta_keys = delta_keys
                self._log_pos += len(new_keys)
                self.delta_builds += 1
            self._seen_version = version

    def add(self, entity_type: str, value: str, source: str = "learned") -> bool:
        """Add to the underlying dictionary (picked up incrementally on the next match)."""
        return self.dictionary.add(entity_type, value, source=source)

    # ------------------------------------------------------------------ matching
    def match(self, query: str) -> list[EntitySpan]:
        """Entities in ``query``, left to right, as spans on the original string."""
        self.refresh()
        if not query:
            return []
        base, delta = self._base, self._delta
        if base is None and delta is None:
            return []
        nt = NormalizedText.of(query)
        text = nt.text
        cands: list[tuple[int, int, str]] = []
        for automaton in (base, delta):
            if automaton is not None:
                for end, key in automaton.iter(text):
                    n = len(key)
                    cands.append((end + 1 - n, -n, key))
        if not cands:
            return []
        cands.sort()
        ranked = self.dictionary._ranked
        n_text = len(text)
        spans: list[EntitySpan] = []
        pos = 0
        for ns, neg_len, key in cands:
            if ns < pos:
                continue
            ne = ns - neg_len
            if ns > 0 and is_boundary_char(text[ns]) and is_boundary_char(text[ns - 1]):
                continue
            if ne < n_text and is_boundary_char(text[ne - 1]) and is_boundary_char(text[ne]):
                continue
            if not nt.is_aligned(ns, ne):
                continue
            types = ranked.get(key)
            if not types:  # removed since the last build
                continue
            start, end = nt.to_original(ns, ne)
            spans.append(EntitySpan(start, end, types[0], query[start:end]))
            pos = ne
        return spans

    def types_of(self, value: str) -> tuple[str, ...]:
        """All types of a surface value, the one :meth:`match` picks first."""
        return self.dictionary.types_of(value)

    def stats(self) -> dict[str, Any]:
        """Sizes and build counters (``automaton_bytes`` from pyahocorasick's own accounting)."""
        self.refresh()
        size = 0
        for automaton in (self._base, self._delta):
            if automaton is not None:
                size += automaton.get_stats()["total_size"]
        return {
            "base_values": self._base_size,
            "delta_values": len(self._delta_keys),
            "automaton_bytes": size,
            "full_builds": self.full_builds,
            "delta_builds": self.delta_builds,
        }
