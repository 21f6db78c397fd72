"""Learning entity values from the large model's function calls.

When the large model answers ``播放周杰伦的稻香`` with
``play(singer="周杰伦", song="稻香")``, both values occur literally in the query, so they
are entities of types ``singer`` and ``song``. :func:`learn_from_call` applies these
rules to every argument:

1. the argument name, normalised (strip + lowercase), is the entity type, unless
   ``type_map`` maps it to another type (or to ``None``: skip that argument); names that
   are not valid type names are skipped;
2. only strings are used: the argument value itself, or strings inside a list/tuple
   (nested lists too); numbers, booleans, ``None`` and objects are skipped;
3. the value is stripped, and one pair of enclosing quotes or title marks is removed
   (``《稻香》`` -> ``稻香``, ``"Lover"`` -> ``Lover``); it is skipped when, normalised (NFKC + casefold), it
   * is shorter than 2 characters (single characters match everywhere),
   * is longer than 40 characters (sentences, not entities),
   * contains a line break or other control character,
   * looks numeric (``12``, ``-3.5``, ``1,000``, ``50%``); dates and times such as
     ``2023年10月15日`` or ``10:30`` are kept,
   * is a boolean-like word or a placeholder (``true``, ``none``, ``null``, ``未知``),
   * is a common function word (:data:`FUNCTION_WORDS`, e.g. ``the``, ``my``, ``这个``);
4. it must occur in the query under the matcher's own rules (normalised, case-insensitive,
   word boundaries for Latin-script values), so everything learned can be matched back.

    >>> from odia_stream.templates import EntityDictionary
    >>> d = EntityDictionary()
    >>> learn_from_call(d, "播放周杰伦的稻香", {"singer": "周杰伦", "song": "稻香", "volume": 30})
    [('singer', '周杰伦'), ('song', '稻香')]
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .dictionary import EntityDictionary
from .text import NormalizedText, is_boundary_char, normalize_text, normalize_type

__all__ = [
    "FUNCTION_WORDS",
    "MAX_VALUE_LENGTH",
    "MIN_VALUE_LENGTH",
    "clean_value",
    "is_learnable_value",
    "learn_from_call",
    "learn_from_messages",
    "occurs_in",
]

MIN_VALUE_LENGTH = 2
MAX_VALUE_LENGTH = 40

# Common function words and placeholders that must never become entities.
FUNCTION_WORDS: frozenset[str] = frozenset(
    """
    a an the of to in on at for from by with about as into onto and or but nor not no yes
    is are was were be been am do does did it its this that these those there here
    i me my mine you your yours he him his she her hers we us our they them their
    what which who whom whose how when where why all any some one ones each every
    please can could would should will shall may might must just also only very more most
    ok okay hi hello hey thanks thank
    true false none null nil n/a na undefined unknown empty default
    的 了 是 在 和 与 或 及 也 都 就 还 又 把 被 给 让 从 到 对 向 吧 吗 呢 啊 哦 嗯
    我 你 他 她 它 您 我们 你们 他们 她们 它们 咱们 自己
    这 那 这个 那个 这些 那些 这里 那里 这儿 那儿 这样 那样
    什么 怎么 怎样 哪个 哪些 哪里 哪儿 为什么 多少 几个
    一个 一下 一首 一些 一点 一起 所有 全部 任何 某个
    我的 你的 他的 她的 帮我 给我 请 请问 可以 能否 能不能 需要 想要 就是 还有 或者 以及 然后
    没有 不是 不要 是的 好的 对的 不用 不知道 未知 无 空 默认 随便 都行 任意
    """.split()  # noqa: SIM905
)

_PAIRS = {
    '"': '"',
    "'": "'",
    "“": "”",
    "‘": "’",
    "«": "»",
    "《": "》",
    "〈": "〉",
    "「": "」",
    "『": "』",
    "【": "】",
}
_NUMERIC = re.compile(r"[+\-−]?(?:\d+(?:[.,_ ]\d+)*|\d*\.\d+)\s*%?")


def is_learnable_value(value: str, stopwords: frozenset[str] = FUNCTION_WORDS) -> bool:
    """Rule 3 of the module docstring: could ``value`` (already stripped) be an entity?"""
    if any(ch < " " or ch == "\x7f" for ch in value):
        return False
    norm = normalize_text(value).strip()
    if not MIN_VALUE_LENGTH <= len(norm) <= MAX_VALUE_LENGTH:
        return False
    if _NUMERIC.fullmatch(norm):
        return False
    return norm not in stopwords


def clean_value(value: str) -> str:
    """Strip whitespace and one pair of enclosing quotes / title marks."""
    value = value.strip()
    if len(value) >= 2 and _PAIRS.get(value[0]) == value[-1]:
        value = value[1:-1].strip()
    return value


def occurs_in(query: NormalizedText | str, value: str) -> bool:
    """True when ``value`` occurs in ``query`` under the matcher's rules (rule 4)."""
    nt = query if isinstance(query, NormalizedText) else NormalizedText.of(query)
    key = normalize_text(value).strip()
    text = nt.text
    if not key:
        return False
    n = len(key)
    start = text.find(key)
    while start >= 0:
        end = start + n
        ok_start = start == 0 or not (is_boundary_char(text[start]) and is_boundary_char(text[start - 1]))
        ok_end = end == len(text) or not (is_boundary_char(text[end - 1]) and is_boundary_char(text[end]))
        if ok_start and ok_end and nt.is_aligned(start, end):
            return True
        start = text.find(key, start + 1)
    return False


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def learn_from_call(
    dictionary: EntityDictionary,
    query: str,
    arguments: Mapping[str, Any],
    *,
    type_map: Mapping[str, str | None] | None = None,
    stopwords: frozenset[str] = FUNCTION_WORDS,
) -> list[tuple[str, str]]:
    """Add the argument values of one call that occur in ``query`` (rules: module docstring).

    ``type_map`` maps normalised argument names to entity types (``None`` skips the
    argument), e.g. ``{"singer_name": "singer", "artist": "singer", "volume": None}``.

    Returns ``(type, value)`` for every value recorded, in argument order: new entries
    and entries whose count went up. A value repeated within one call counts once.
    """
    if not query or not isinstance(arguments, Mapping):
        return []
    nt = NormalizedText.of(query)
    learned: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for name, raw in arguments.items():
        if not isinstance(name, str):
            continue
        try:
            etype = normalize_type(name)
            if type_map is not None and etype in type_map:
                mapped = type_map[etype]
                if mapped is None:
                    continue
                etype = normalize_type(mapped)
        except (TypeError, ValueError):
            continue
        for candidate in _strings(raw):
            value = clean_value(candidate)
            if not is_learnable_value(value, stopwords) or not occurs_in(nt, value):
                continue
            marker = (etype, normalize_text(value))
            if marker in seen:
                continue
            seen.add(marker)
            dictionary.add(etype, value, source="learned")
            learned.append((etype, value))
    return learned


def _call_of(message: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """``(name, arguments)`` pairs carried by one message, in the shapes we know."""
    role = message.get("role")
    content = message.get("content")
    calls: list[tuple[str, Any]] = []
    if role in ("function call", "function_call") and isinstance(content, Mapping):
        calls.append((content.get("name", ""), content.get("arguments")))
    if role == "assistant":
        for tc in message.get("tool_calls") or ():
            fn = tc.get("function") if isinstance(tc, Mapping) else None
            if isinstance(fn, Mapping):
                calls.append((fn.get("name", ""), fn.get("arguments")))
        fc = message.get("function_call")
        if isinstance(fc, Mapping):
            calls.append((fc.get("name", ""), fc.get("arguments")))
    out: list[tuple[str, Any]] = []
    for name, args in calls:
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except json.JSONDecodeError:
                continue
        if isinstance(args, Mapping):
            out.append((name, args))
    return out


def learn_from_messages(
    dictionary: EntityDictionary,
    messages: Sequence[Mapping[str, Any]],
    *,
    type_map: Mapping[str, str | None] | None = None,
    stopwords: frozenset[str] = FUNCTION_WORDS,
) -> list[tuple[str, str]]:
    """Learn from a conversation: each call is checked against the user message just before it.

    Understands HammerBench records (``{"role": "function call", "content": {"name",
    "arguments"}}``) and the OpenAI shapes (assistant ``tool_calls`` / ``function_call``,
    arguments as a JSON string or object).
    """
    learned: list[tuple[str, str]] = []
    last_user: str | None = None
    for message in messages:
        if not isinstance(message, Mapping):
            continue
        if message.get("role") == "user":
            content = message.get("content")
            last_user = content if isinstance(content, str) else None
            continue
        if last_user is None:
            continue
        for _name, args in _call_of(message):
            learned.extend(
                learn_from_call(dictionary, last_user, args, type_map=type_map, stopwords=stopwords)
            )
    return learned
