"""NER templating: entity dictionaries, Aho-Corasick matching and query templates.

Turns ``"播放周杰伦的稻香"`` into ``"播放<singer>的<song>"`` so that queries differing only
in entity values fall into one template cluster. Dictionaries come from user files
(TSV/JSON) and grow from the large model's calls (:func:`learn_from_call`).

    >>> from odia_stream.templates import EntityDictionary, QueryTemplater, learn_from_call
    >>> d = EntityDictionary()
    >>> learn_from_call(d, "播放周杰伦的稻香", {"singer": "周杰伦", "song": "稻香"})
    [('singer', '周杰伦'), ('song', '稻香')]
    >>> QueryTemplater(d).template("播放周杰伦的七里香").text      # 七里香 not known yet
    '播放<singer>的七里香'
"""

from .dictionary import EntityDictionary, EntryInfo
from .io import EntityFileError, EntityRow, read_entity_file
from .learning import FUNCTION_WORDS, is_learnable_value, learn_from_call, learn_from_messages, occurs_in
from .matcher import EntityMatcher, EntitySpan
from .templater import QueryTemplater, Template, render_template
from .text import NormalizedText, normalize_text, normalize_type

__all__ = [
    "FUNCTION_WORDS",
    "EntityDictionary",
    "EntityFileError",
    "EntityMatcher",
    "EntityRow",
    "EntitySpan",
    "EntryInfo",
    "NormalizedText",
    "QueryTemplater",
    "Template",
    "is_learnable_value",
    "learn_from_call",
    "learn_from_messages",
    "normalize_text",
    "normalize_type",
    "occurs_in",
    "read_entity_file",
    "render_template",
]
