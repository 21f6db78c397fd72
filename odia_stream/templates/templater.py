"""Query templates: entity values replaced by ``<type>`` placeholders.

Queries that differ only in their entity values get the same template text, which is
what clustering groups on. Text outside the entities is kept as it is (normalising it is
the job of the query normaliser), so a template is a pure function of the query and
the dictionary.

    >>> from odia_stream.templates import EntityDictionary, QueryTemplater
    >>> d = EntityDictionary()
    >>> for t, v in [("singer", "周杰伦"), ("song", "稻香"), ("singer", "Jay Chou"),
    ...              ("song", "Rice Fragrance")]:
    ...     _ = d.add(t, v)
    >>> QueryTemplater(d).template("播放周杰伦的稻香").text
    '播放<singer>的<song>'
    >>> t = QueryTemplater(d).template("play Jay Chou's Rice Fragrance")
    >>> t.text, t.slots
    ("play <singer>'s <song>", (('singer', 'Jay Chou'), ('song', 'Rice Fragrance')))
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .dictionary import EntityDictionary
from .matcher import EntityMatcher, EntitySpan

__all__ = ["QueryTemplater", "Template", "render_template"]


@dataclass(frozen=True, slots=True)
class Template:
    """A templated query: ``text`` with ``<type>`` placeholders and the values they replaced."""

    text: str
    slots: tuple[tuple[str, str], ...]
    spans: tuple[EntitySpan, ...] = ()

    @property
    def has_entities(self) -> bool:
        """True when at least one entity was replaced."""
        return bool(self.slots)


def render_template(query: str, spans: Iterable[EntitySpan]) -> Template:
    """Replace non-overlapping, left-to-right ``spans`` of ``query`` by ``<type>``."""
    spans = tuple(spans)
    parts: list[str] = []
    pos = 0
    for span in spans:
        if span.start < pos or span.end > len(query) or span.end <= span.start:
            raise ValueError(f"spans must be ordered, non-overlapping and inside the query: {span}")
        parts.append(query[pos : span.start])
        parts.append(f"<{span.type}>")
        pos = span.end
    parts.append(query[pos:])
    return Template("".join(parts), tuple((s.type, s.value) for s in spans), spans)


class QueryTemplater:
    """Turns queries into :class:`Template` s using an entity dictionary (or a ready matcher).

    Results are memoised per query for the dictionary version they were computed under (up to
    ``cache_size`` queries), so templating the same query again costs a lookup until the
    dictionary changes.
    """

    def __init__(self, dictionary: EntityDictionary | EntityMatcher, cache_size: int = 50_000) -> None:
        self.matcher = dictionary if isinstance(dictionary, EntityMatcher) else EntityMatcher(dictionary)
        self.cache_size = cache_size
        self._cache: dict[str, tuple[int, Template]] = {}

    @property
    def dictionary(self) -> EntityDictionary:
        """The dictionary the templates come from."""
        return self.matcher.dictionary

    def template(self, query: str) -> Template:
        """Template one query."""
        version = self.matcher.dictionary.version  # monotonic: any change invalidates
        hit = self._cache.get(query)
        if hit is not None and hit[0] == version:
            return hit[1]
        result = render_template(query, self.matcher.match(query))
        if self.cache_size:
            if len(self._cache) >= self.cache_size:
                self._cache.clear()
            self._cache[query] = (version, result)
        return result
