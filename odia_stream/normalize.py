"""Query normalisation: the key under which identical queries are grouped.

>>> normalize_query("  Play  Jay Chou's   Rice Fragrance!! ")
"play jay chou's rice fragrance"
>>> normalize_query("播放周杰伦的稻香。")
'播放周杰伦的稻香'
>>> normalize_query("ＰＬＡＹ　ｍｕｓｉｃ？")
'play music'
"""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")
#: Punctuation that carries no meaning at the ends of a query (ASCII and CJK).
_EDGE_PUNCT = "。．.!！?？,，;；:：、~～…\"'“”‘’「」『』()（）[]【】 "


def normalize_query(text: str) -> str:
    """NFKC (full-width → half-width), lower-case, collapse whitespace, trim edge punctuation."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _SPACES.sub(" ", text).strip()
    stripped = text.strip(_EDGE_PUNCT)
    # Keep inner apostrophes ("jay chou's"); only the ends are trimmed.
    return stripped if stripped else text
