"""Built-in **synthetic** traffic: function-call logs of an invented music app (zh and en).

Nothing here is real user data. Every event is generated from seeded random draws over small
vocabularies of invented artists, songs and playlists (``odia_stream/data/synthetic_music/``),
and says so: ``event_id`` starts with ``synthetic-music-`` and ``source`` with
``synthetic-music/``. See ``docs/synthetic_music.md``.

What the generator imitates (each a knob of :func:`iter_music_records`):

* **a fixed tool set**: every request offers the app's 17 tools (:func:`music_tools`), as a
  production app does, so the ``tools`` part of a scope is one fingerprint;
* **Zipf popularity**: intents have fixed popularity weights; the paraphrase template, the
  artist, the song, the playlist, genre and mood are each drawn by Zipf rank (list order), so a
  few exact queries ("下一首", "pause", "播放林知夏的夏夜晚风") dominate the stream;
* **paraphrases**: several surface forms per intent and language, slots filled from the
  dictionaries; calls carry the entity values as string arguments (so entity learning sees them);
* **context-dependent follow-ups**: a session may go on with "换一首" / "play more like this" /
  "this one" / "a bit more" ..., whose function and arguments depend on the previous call, which
  the history carries as an OpenAI-style assistant ``tool_calls`` message plus its tool result;
* **ambiguous requests** (a bare song or artist name, "music", "继续") whose function varies
  between two candidates: a learner should find these *complex*;
* **large-model inconsistency**: a share of the recorded calls use another plausible function,
  or drop an argument; the intended call is kept on the :class:`SyntheticMusicRecord`;
* **no-call records**: chit-chat the large model answers without a function.

Everything is a function of ``seed`` (Python's ``random.Random``). The generator is a stream:
:func:`iter_music_records` with ``n=None`` never ends.

>>> events = generate_music_events(3, seed=1)
>>> [e.event_id for e in events]
['synthetic-music-1-00000000', 'synthetic-music-1-00000001', 'synthetic-music-1-00000002']
>>> all(e.source.startswith("synthetic-music/") and e.app == "music-app" for e in events)
True
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from importlib import resources
from itertools import accumulate
from pathlib import Path
from typing import Any, Literal, TypedDict, Unpack

from odia_stream.datasets.base import DatasetError, ReadStats, dataset_timestamp, with_group
from schemas import ChatMessage, FCLogEvent, FunctionCall, FunctionSpec, ToolCall, ToolSpec

__all__ = [
    "APP",
    "DEFAULT_EVENTS",
    "LANGUAGES",
    "MusicKnobs",
    "SOURCE_PREFIX",
    "SYNTHETIC_DATASETS",
    "RecordKind",
    "SyntheticMusicConfig",
    "SyntheticMusicRecord",
    "generate_music_events",
    "is_synthetic_spec",
    "iter_music_events",
    "iter_music_records",
    "music_tools",
    "parse_synthetic_spec",
    "read_synthetic",
]

APP = "music-app"
#: ``event_id`` and ``source`` of every generated event start with this.
SOURCE_PREFIX = "synthetic-music"
LANGUAGES = ("zh", "en")
#: Events :func:`read_synthetic` yields when neither the spec nor a limit says how many.
DEFAULT_EVENTS = 10_000
#: Names accepted after ``synthetic:`` by :func:`load_dataset <odia_stream.datasets.load_dataset>`.
SYNTHETIC_DATASETS = ("music",)

RecordKind = Literal["plain", "follow_up", "ambiguous", "chitchat"]

_DATA = "data/synthetic_music"
_SLOT = re.compile(r"\{(\w+)\}")
_INT_SLOTS = {"level": (50, 30, 80, 20, 60, 40, 70, 100, 10, 90), "minutes": (30, 60, 15, 20, 45, 10, 90)}
_LATENCY_MEDIAN_MS = 1600.0
_LATENCY_SIGMA = 0.35
_HISTORY_TURNS = 3
#: The assistant's text answer to chit-chat (no function called), per language.
_CHITCHAT_REPLY = {"zh": "好的～有什么想听的吗？", "en": "Sure! Anything you'd like to hear?"}


# ---------------------------------------------------------------------------------- the tools
def _fn(name: str, description: str, properties: dict[str, Any] | None = None, required: Sequence[str] = ()) -> ToolSpec:
    parameters: dict[str, Any] = {"type": "object", "properties": properties or {}}
    if required:
        parameters["required"] = list(required)
    return ToolSpec(function=FunctionSpec(name=name, description=description, parameters=parameters))


def _s(description: str) -> dict[str, str]:
    return {"type": "string", "description": description}


_SONG = _s("Song title")
_ARTIST = _s("Artist or band name")

_TOOLS: tuple[ToolSpec, ...] = (
    _fn("play_song", "Play a song", {"song": _SONG, "artist": _ARTIST}, ["song"]),
    _fn("play_artist", "Play songs by an artist", {"artist": _ARTIST}, ["artist"]),
    _fn("play_playlist", "Play one of the user's playlists", {"playlist": _s("Playlist name")}, ["playlist"]),
    _fn("play_similar", "Play songs similar to a song or an artist (default: what is playing)",
        {"song": _SONG, "artist": _ARTIST}),
    _fn("search_song", "Search the catalogue for a song", {"song": _SONG, "artist": _ARTIST}, ["song"]),
    _fn("search_artist", "Look up an artist", {"artist": _ARTIST}, ["artist"]),
    _fn("recommend_music", "Recommend and play music by genre and/or mood",
        {"genre": _s("Genre, e.g. jazz"), "mood": _s("Mood, e.g. relaxing")}),
    _fn("pause_playback", "Pause playback"),
    _fn("resume_playback", "Resume playback"),
    _fn("next_track", "Skip to the next track"),
    _fn("previous_track", "Go back to the previous track"),
    _fn("set_volume", "Set the volume to a level, or turn it up or down",
        {"level": {"type": "integer", "minimum": 0, "maximum": 100, "description": "Volume 0-100"},
         "direction": {"type": "string", "enum": ["up", "down"]}}),
    _fn("add_to_favorites", "Add a song (default: the current one) to the favourites", {"song": _SONG, "artist": _ARTIST}),
    _fn("set_play_mode", "Set the play mode",
        {"mode": {"type": "string", "enum": ["shuffle", "repeat_one", "repeat_all", "sequential"]}}, ["mode"]),
    _fn("get_lyrics", "Show the lyrics of a song (default: the current one)", {"song": _SONG, "artist": _ARTIST}),
    _fn("get_current_track", "Tell which song is playing"),
    _fn("set_sleep_timer", "Stop playback after some minutes",
        {"minutes": {"type": "integer", "minimum": 1, "maximum": 240}}, ["minutes"]),
)
_TOOL_BY_NAME = {t.name: t for t in _TOOLS}


def music_tools() -> list[ToolSpec]:
    """The music app's fixed tool set (OpenAI ``tools`` shape), offered with every request."""
    return list(_TOOLS)


# ------------------------------------------------------------------------------ intents and rules
@dataclass(frozen=True)
class _Intent:
    function: str
    weight: float
    args: Mapping[str, Any] = field(default_factory=dict)


#: Intent -> the function a consistent large model calls, its popularity and fixed arguments.
#: Slot values of the template (song, artist, playlist, genre, mood, level, minutes) become arguments.
_INTENTS: dict[str, _Intent] = {
    "play_song": _Intent("play_song", 18),
    "next": _Intent("next_track", 12),
    "play_artist": _Intent("play_artist", 10),
    "pause": _Intent("pause_playback", 9),
    "recommend_mood": _Intent("recommend_music", 6),
    "recommend_genre": _Intent("recommend_music", 6),
    "play_playlist": _Intent("play_playlist", 6),
    "resume": _Intent("resume_playback", 5),
    "search_song": _Intent("search_song", 5),
    "previous": _Intent("previous_track", 4),
    "volume_up": _Intent("set_volume", 4, {"direction": "up"}),
    "volume_down": _Intent("set_volume", 3, {"direction": "down"}),
    "current_song": _Intent("get_current_track", 3),
    "favorite": _Intent("add_to_favorites", 3),
    "play_mode": _Intent("set_play_mode", 3),
    "volume_set": _Intent("set_volume", 2),
    "lyrics": _Intent("get_lyrics", 2),
    "sleep_timer": _Intent("set_sleep_timer", 2),
    "search_artist": _Intent("search_artist", 2),
}

#: Ambiguous requests: (popularity, the functions a large model splits between, equally).
_AMBIGUOUS: dict[str, tuple[float, tuple[str, ...]]] = {
    "bare_song": (0.35, ("play_song", "search_song")),
    "bare_artist": (0.30, ("play_artist", "search_artist")),
    "some_music": (0.20, ("recommend_music", "resume_playback")),
    "go_on": (0.15, ("resume_playback", "next_track")),
}

_PLAYBACK = frozenset({"play_song", "play_artist", "play_playlist", "play_similar", "next_track", "previous_track",
                       "resume_playback", "recommend_music"})

#: Follow-up -> {previous function -> rule}; a rule gives (function, arguments) from the previous
#: call's arguments and the track playing. Popularity of the follow-ups comes from list order.
_FOLLOW_UP_ORDER = ("change", "more_like_this", "favorite_this", "this_one", "a_bit_more", "lyrics_this")


def _now_song(now: tuple[str, str] | None) -> dict[str, str]:
    return {"song": now[0]} if now else {}


def _follow_up(kind: str, prev: FunctionCall, now: tuple[str, str] | None) -> FunctionCall | None:
    """The call a consistent model makes for follow-up ``kind`` after ``prev`` (None: does not apply)."""
    fn, args = prev.name, prev.arguments
    if kind == "change":
        if fn == "recommend_music":
            return FunctionCall(name="recommend_music", arguments=dict(args))
        if fn in _PLAYBACK:
            return FunctionCall(name="next_track")
    elif kind == "more_like_this":
        if fn == "recommend_music":
            return FunctionCall(name="recommend_music", arguments=dict(args))
        if fn == "play_artist" and "artist" in args:
            return FunctionCall(name="play_similar", arguments={"artist": args["artist"]})
        if fn in _PLAYBACK and now:
            return FunctionCall(name="play_similar", arguments=_now_song(now))
    elif kind == "this_one":
        if fn == "search_song" and "song" in args:
            return FunctionCall(name="play_song", arguments=dict(args))
        if fn == "search_artist" and "artist" in args:
            return FunctionCall(name="play_artist", arguments=dict(args))
    elif kind == "favorite_this":
        if (fn in _PLAYBACK or fn == "get_current_track") and now:
            return FunctionCall(name="add_to_favorites", arguments=_now_song(now))
    elif kind == "a_bit_more" and fn == "set_volume" and "direction" in args:
        return FunctionCall(name="set_volume", arguments={"direction": args["direction"]})
    elif kind == "lyrics_this" and (fn in _PLAYBACK or fn == "get_current_track") and now:
        return FunctionCall(name="get_lyrics", arguments=_now_song(now))
    return None


#: Plausible wrong functions per function, with arguments they add (inconsistency).
_ALTERNATIVES: dict[str, tuple[tuple[str, Mapping[str, Any]], ...]] = {
    "play_song": (("search_song", {}), ("play_similar", {})),
    "search_song": (("play_song", {}),),
    "play_artist": (("search_artist", {}), ("play_similar", {})),
    "search_artist": (("play_artist", {}),),
    "play_playlist": (("recommend_music", {}),),
    "recommend_music": (("play_similar", {}),),
    "play_similar": (("recommend_music", {}), ("next_track", {})),
    "pause_playback": (("set_volume", {"level": 0}),),
    "resume_playback": (("next_track", {}), ("recommend_music", {})),
    "next_track": (("play_similar", {}), ("previous_track", {})),
    "previous_track": (("next_track", {}),),
    "add_to_favorites": (("play_song", {}),),
    "get_lyrics": (("search_song", {}), ("get_current_track", {})),
    "get_current_track": (("get_lyrics", {}),),
    "set_sleep_timer": (("pause_playback", {}),),
}


# ------------------------------------------------------------------------------ vocabulary files
@dataclass(frozen=True)
class _Template:
    text: str
    args: Mapping[str, Any]
    slots: tuple[str, ...]


@dataclass(frozen=True)
class _Vocabulary:
    lang: str
    artists: tuple[tuple[str, tuple[str, ...]], ...]
    playlists: tuple[str, ...]
    genres: tuple[str, ...]
    moods: tuple[str, ...]
    intents: Mapping[str, tuple[_Template, ...]]
    follow_ups: Mapping[str, tuple[_Template, ...]]
    ambiguous: Mapping[str, tuple[_Template, ...]]
    chitchat: tuple[str, ...]

    @cached_property
    def songs_of(self) -> dict[str, tuple[str, ...]]:
        return dict(self.artists)

    @cached_property
    def artist_of(self) -> dict[str, str]:
        return {song: artist for artist, songs in self.artists for song in songs}


def _templates(raw: Any, where: str, path: Path | str) -> tuple[_Template, ...]:
    if not isinstance(raw, list) or not raw:
        raise DatasetError(path, None, f"{where}: expected a non-empty list of templates")
    out = []
    for item in raw:
        text, args = (item, {}) if isinstance(item, str) else (item.get("q"), item.get("args", {}))
        if not isinstance(text, str) or not text.strip() or not isinstance(args, dict):
            raise DatasetError(path, None, f"{where}: bad template {item!r}")
        slots = tuple(_SLOT.findall(text))
        unknown = set(slots) - {"song", "artist", "playlist", "genre", "mood", *_INT_SLOTS}
        if unknown:
            raise DatasetError(path, None, f"{where}: unknown slot(s) {sorted(unknown)} in {text!r}")
        out.append(_Template(text, args, slots))
    return tuple(out)


def _strings(raw: Any, where: str, path: Path | str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw or not all(isinstance(s, str) and s.strip() for s in raw):
        raise DatasetError(path, None, f"{where}: expected a non-empty list of strings")
    return tuple(raw)


@lru_cache(maxsize=len(LANGUAGES))
def _vocabulary(lang: str) -> _Vocabulary:
    """The packaged vocabulary and templates of one language (validated)."""
    if lang not in LANGUAGES:
        raise ValueError(f"synthetic music languages are {LANGUAGES}, not {lang!r}")
    ref = resources.files("odia_stream").joinpath(f"{_DATA}/{lang}.json")
    try:
        data = json.loads(ref.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(str(ref), None, f"cannot read the synthetic music vocabulary: {exc}") from exc
    artists = []
    for a in data.get("artists") or ():
        if not isinstance(a, dict) or not isinstance(a.get("name"), str):
            raise DatasetError(str(ref), None, f"artists: bad entry {a!r}")
        artists.append((a["name"], _strings(a.get("songs"), f"songs of {a['name']}", str(ref))))
    if not artists:
        raise DatasetError(str(ref), None, "artists: none")
    sections = {k: data.get(k) or {} for k in ("intents", "follow_ups", "ambiguous")}
    missing = (
        [f"intents.{k}" for k in _INTENTS if k not in sections["intents"]]
        + [f"follow_ups.{k}" for k in _FOLLOW_UP_ORDER if k not in sections["follow_ups"]]
        + [f"ambiguous.{k}" for k in _AMBIGUOUS if k not in sections["ambiguous"]]
    )
    if missing:
        raise DatasetError(str(ref), None, f"missing template lists: {', '.join(missing)}")
    return _Vocabulary(
        lang=lang,
        artists=tuple(artists),
        playlists=_strings(data.get("playlists"), "playlists", str(ref)),
        genres=_strings(data.get("genres"), "genres", str(ref)),
        moods=_strings(data.get("moods"), "moods", str(ref)),
        intents={k: _templates(sections["intents"][k], f"intents.{k}", str(ref)) for k in _INTENTS},
        follow_ups={k: _templates(sections["follow_ups"][k], f"follow_ups.{k}", str(ref)) for k in _FOLLOW_UP_ORDER},
        ambiguous={k: _templates(sections["ambiguous"][k], f"ambiguous.{k}", str(ref)) for k in _AMBIGUOUS},
        chitchat=_strings(data.get("chitchat"), "chitchat", str(ref)),
    )


# ------------------------------------------------------------------------------ configuration
@dataclass(frozen=True)
class SyntheticMusicConfig:
    """Knobs of the generator (validated on construction; ``ValueError`` on a bad value)."""

    languages: tuple[str, ...] = LANGUAGES
    #: Zipf exponent of template and entity popularity (rank = list order in the data files).
    zipf_exponent: float = 1.1
    #: Chance that a session goes on with a follow-up after each turn that made a call.
    follow_up_rate: float = 0.3
    #: Share of sessions that open with an ambiguous request.
    ambiguous_share: float = 0.05
    #: Share of sessions that open with chit-chat (answered without a call).
    chitchat_share: float = 0.04
    #: Share of the (non-ambiguous) calls the large model gets wrong: another function or a dropped argument.
    inconsistency_share: float = 0.03
    app: str = APP

    def __post_init__(self) -> None:
        if not self.languages:
            raise ValueError("languages must not be empty")
        bad = [lang for lang in self.languages if lang not in LANGUAGES]
        if bad or len(set(self.languages)) != len(self.languages):
            raise ValueError(f"languages must be distinct values of {LANGUAGES}, got {self.languages!r}")
        if not (self.zipf_exponent > 0 and math.isfinite(self.zipf_exponent)):
            raise ValueError("zipf_exponent must be a positive number")
        for name in ("follow_up_rate", "ambiguous_share", "chitchat_share", "inconsistency_share"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be within [0, 1], got {value!r}")
        if self.follow_up_rate >= 1:
            raise ValueError("follow_up_rate must be below 1 (sessions must end)")
        if self.ambiguous_share + self.chitchat_share > 1:
            raise ValueError("ambiguous_share + chitchat_share must not exceed 1")
        if not self.app.strip():
            raise ValueError("app must not be empty")


@dataclass(frozen=True)
class SyntheticMusicRecord:
    """A generated event with the truth behind it (what a test or a benchmark scores against)."""

    event: FCLogEvent
    lang: str
    kind: RecordKind
    #: Template family: an intent (``play_song``), a follow-up (``change``), an ambiguous request
    #: (``bare_song``) or ``chitchat``.
    intent: str
    #: What a consistent large model calls (for ambiguous requests: the candidate drawn).
    intended_call: FunctionCall | None
    #: True when the recorded call differs from ``intended_call`` (simulated large-model error).
    inconsistent: bool
    #: Running number of the conversation the event belongs to.
    session: int


# ------------------------------------------------------------------------------ the generator
class _Zipf:
    """Cumulative Zipf weights per list length (cached)."""

    def __init__(self, exponent: float) -> None:
        self.exponent = exponent
        self._cum: dict[int, list[float]] = {}

    def index(self, rng: random.Random, n: int) -> int:
        cum = self._cum.get(n)
        if cum is None:
            cum = self._cum[n] = list(accumulate(1.0 / (r**self.exponent) for r in range(1, n + 1)))
        return rng.choices(range(n), cum_weights=cum, k=1)[0]

    def pick(self, rng: random.Random, items: Sequence[Any]) -> Any:
        return items[self.index(rng, len(items))]


class _Session:
    """State of one conversation: history messages and the track playing."""

    def __init__(self, number: int, lang: str) -> None:
        self.number = number
        self.lang = lang
        self.turns: list[list[ChatMessage]] = []
        self.now: tuple[str, str] | None = None
        self.last_call: FunctionCall | None = None
        self.calls = 0

    def history(self) -> list[ChatMessage]:
        return [m for turn in self.turns[-_HISTORY_TURNS:] for m in turn]


class _Generator:
    def __init__(self, config: SyntheticMusicConfig, seed: int) -> None:
        self.cfg = config
        self.seed = seed
        self.rng = random.Random(seed)
        self.zipf = _Zipf(config.zipf_exponent)
        self.vocab = {lang: _vocabulary(lang) for lang in config.languages}
        self.tools = music_tools()
        self._intent_names = list(_INTENTS)
        self._intent_cum = list(accumulate(i.weight for i in _INTENTS.values()))
        self._ambiguous_names = list(_AMBIGUOUS)
        self._ambiguous_cum = list(accumulate(w for w, _ in _AMBIGUOUS.values()))

    # -- slot filling
    def _fill(self, template: _Template, vocab: _Vocabulary) -> tuple[str, dict[str, Any]]:
        """The query and the arguments its slots give (a song comes with its own artist)."""
        rng, values = self.rng, {}
        artist, songs = self.zipf.pick(rng, vocab.artists)
        song = self.zipf.pick(rng, songs)
        args: dict[str, Any] = dict(template.args)
        for slot in template.slots:
            if slot == "song":
                values[slot] = song
            elif slot == "artist":
                values[slot] = artist
            elif slot in _INT_SLOTS:
                values[slot] = self.zipf.pick(rng, _INT_SLOTS[slot])
            else:
                values[slot] = self.zipf.pick(rng, {"playlist": vocab.playlists, "genre": vocab.genres,
                                                    "mood": vocab.moods}[slot])
            args[slot] = values[slot]
        return template.text.format(**values), args

    def _surface(self, query: str, lang: str) -> str:
        """Light production noise that normalisation removes: capitals, a closing mark."""
        rng = self.rng
        if lang == "en" and rng.random() < 0.3:
            query = query[:1].upper() + query[1:]
        if rng.random() < 0.1:
            query += rng.choice(("！", "。") if lang == "zh" else ("!", "."))
        return query

    # -- inconsistency
    def _perturb(self, call: FunctionCall) -> FunctionCall:
        rng = self.rng
        options = []
        for name, extra in _ALTERNATIVES.get(call.name, ()):
            spec = _TOOL_BY_NAME[name].function
            kept = {k: v for k, v in call.arguments.items() if k in spec.argument_names()}
            kept.update(extra)
            if set(spec.required_arguments()) <= set(kept):
                options.append(FunctionCall(name=name, arguments=kept))
        if options and (not call.arguments or rng.random() < 0.7):
            return rng.choice(options)
        if call.arguments:
            dropped = rng.choice(sorted(call.arguments))
            return FunctionCall(name=call.name, arguments={k: v for k, v in call.arguments.items() if k != dropped})
        raise ValueError(f"no inconsistent variant of {call.name}: give it alternatives or arguments")

    # -- tool results (what the history shows after a call)
    def _result(self, call: FunctionCall, session: _Session, vocab: _Vocabulary) -> dict[str, Any]:
        rng, fn, args = self.rng, call.name, call.arguments
        if fn in _PLAYBACK:
            if fn == "play_song" and "song" in args:
                session.now = (args["song"], args.get("artist") or vocab.artist_of.get(args["song"], ""))
            elif fn == "play_artist" or (fn == "play_similar" and "artist" in args and "song" not in args):
                songs = vocab.songs_of.get(args.get("artist", ""))
                session.now = (self.zipf.pick(rng, songs), args["artist"]) if songs else None
            else:
                artist, songs = self.zipf.pick(rng, vocab.artists)
                session.now = (self.zipf.pick(rng, songs), artist)
            result: dict[str, Any] = {"status": "playing"}
            if session.now:
                result.update(song=session.now[0], artist=session.now[1])
            return result
        if fn == "search_song":
            song = args.get("song", "")
            return {"results": [{"song": song, "artist": args.get("artist") or vocab.artist_of.get(song, "")}]}
        if fn == "search_artist":
            artist = args.get("artist", "")
            return {"artist": artist, "top_songs": list(vocab.songs_of.get(artist, ())[:3])}
        if fn == "get_current_track" and session.now:
            return {"song": session.now[0], "artist": session.now[1]}
        if fn == "pause_playback":
            return {"status": "paused"}
        return {"status": "ok", **args}

    def _record(
        self, k: int, session: _Session, kind: RecordKind, intent: str, query: str,
        intended: FunctionCall | None, may_err: bool,
    ) -> SyntheticMusicRecord:
        vocab = self.vocab[session.lang]
        recorded = intended
        inconsistent = False
        if intended is not None and may_err and self.rng.random() < self.cfg.inconsistency_share:
            recorded = self._perturb(intended)
            inconsistent = recorded != intended
        history = session.history()
        event = FCLogEvent(
            event_id=f"{SOURCE_PREFIX}-{self.seed}-{k:08d}",
            timestamp=dataset_timestamp(k),
            app=self.cfg.app,
            query=self._surface(query, session.lang),
            history=history,
            tools=self.tools,
            call=recorded,
            latency_ms=round(self.rng.lognormvariate(math.log(_LATENCY_MEDIAN_MS), _LATENCY_SIGMA), 1),
            source=with_group(f"{SOURCE_PREFIX}/{session.lang}/{kind}/{intent}#{k}",
                              f"{SOURCE_PREFIX}:{self.seed}:{session.number}"),
        )
        # The turn, as the next request of this session sees it.
        turn = [ChatMessage(role="user", content=event.query)]
        if recorded is None:
            turn.append(ChatMessage(role="assistant", content=_CHITCHAT_REPLY[session.lang]))
        else:
            call_id = f"call_{session.calls}"
            session.calls += 1
            turn.append(ChatMessage(role="assistant", tool_calls=[ToolCall(id=call_id, function=recorded)]))
            result = self._result(recorded, session, vocab)
            turn.append(ChatMessage(role="tool", tool_call_id=call_id, name=recorded.name,
                                    content=json.dumps(result, ensure_ascii=False)))
        session.turns.append(turn)
        session.last_call = recorded
        return SyntheticMusicRecord(event, session.lang, kind, intent, intended, inconsistent, session.number)

    def _opening(self, k: int, session: _Session) -> SyntheticMusicRecord:
        rng, vocab, cfg = self.rng, self.vocab[session.lang], self.cfg
        u = rng.random()
        if u < cfg.chitchat_share:
            return self._record(k, session, "chitchat", "chitchat", self.zipf.pick(rng, vocab.chitchat), None, False)
        if u < cfg.chitchat_share + cfg.ambiguous_share:
            name = rng.choices(self._ambiguous_names, cum_weights=self._ambiguous_cum, k=1)[0]
            query, args = self._fill(self.zipf.pick(rng, vocab.ambiguous[name]), vocab)
            fn = rng.choice(_AMBIGUOUS[name][1])
            spec = _TOOL_BY_NAME[fn].function
            call = FunctionCall(name=fn, arguments={k2: v for k2, v in args.items() if k2 in spec.argument_names()})
            return self._record(k, session, "ambiguous", name, query, call, False)
        name = rng.choices(self._intent_names, cum_weights=self._intent_cum, k=1)[0]
        intent = _INTENTS[name]
        query, args = self._fill(self.zipf.pick(rng, vocab.intents[name]), vocab)
        call = FunctionCall(name=intent.function, arguments={**intent.args, **args})
        return self._record(k, session, "plain", name, query, call, True)

    def _follow(self, k: int, session: _Session) -> SyntheticMusicRecord | None:
        prev = session.last_call
        if prev is None:
            return None
        options = [(kind, c) for kind in _FOLLOW_UP_ORDER if (c := _follow_up(kind, prev, session.now)) is not None]
        if not options:
            return None
        kind, call = self.zipf.pick(self.rng, options)
        vocab = self.vocab[session.lang]
        query = self.zipf.pick(self.rng, vocab.follow_ups[kind]).text
        return self._record(k, session, "follow_up", kind, query, call, True)

    def records(self, n: int | None) -> Iterator[SyntheticMusicRecord]:
        k = 0
        number = 0
        while n is None or k < n:
            session = _Session(number, self.rng.choice(self.cfg.languages))
            number += 1
            record = self._opening(k, session)
            yield record
            k += 1
            while (n is None or k < n) and self.rng.random() < self.cfg.follow_up_rate:
                follow = self._follow(k, session)
                if follow is None:
                    break
                yield follow
                k += 1


class MusicKnobs(TypedDict, total=False):
    """Keyword knobs of the generator functions: fields of :class:`SyntheticMusicConfig` (its defaults)."""

    languages: Sequence[str]
    zipf_exponent: float
    follow_up_rate: float
    ambiguous_share: float
    chitchat_share: float
    inconsistency_share: float
    app: str


def iter_music_records(
    n: int | None, *, seed: int = 0, **knobs: Unpack[MusicKnobs]
) -> Iterator[SyntheticMusicRecord]:
    """``n`` synthetic records (``None``: an endless stream), deterministic for ``seed``.

    Knobs as in :class:`SyntheticMusicConfig`; a bad value raises ``ValueError`` at the call.
    """
    if n is not None and n < 0:
        raise ValueError("n must be >= 0")
    options: dict[str, Any] = dict(knobs)
    if "languages" in options:
        options["languages"] = tuple(options["languages"])
    return _Generator(SyntheticMusicConfig(**options), seed).records(n)


def iter_music_events(n: int | None, *, seed: int = 0, **knobs: Unpack[MusicKnobs]) -> Iterator[FCLogEvent]:
    """The events of :func:`iter_music_records` (same arguments)."""
    return (r.event for r in iter_music_records(n, seed=seed, **knobs))


def generate_music_events(n: int, *, seed: int, **knobs: Unpack[MusicKnobs]) -> list[FCLogEvent]:
    """``n`` synthetic music-app events as a list (see :func:`iter_music_records`)."""
    return list(iter_music_events(n, seed=seed, **knobs))


# ------------------------------------------------------------------------------ dataset spec
_SPEC_KEYS: dict[str, tuple[str, type]] = {
    "n": ("n", int),
    "seed": ("seed", int),
    "exponent": ("zipf_exponent", float),
    "follow_up": ("follow_up_rate", float),
    "ambiguous": ("ambiguous_share", float),
    "chitchat": ("chitchat_share", float),
    "inconsistency": ("inconsistency_share", float),
}


def is_synthetic_spec(path: Path | str) -> bool:
    """True for ``synthetic:<name>[:k=v,...]`` (a built-in generator, not a file)."""
    return str(path).startswith("synthetic:")


def parse_synthetic_spec(spec: Path | str) -> tuple[str, dict[str, Any]]:
    """``synthetic:music[:n=20000,seed=3,inconsistency=0.05,...]`` -> (name, keyword options).

    Keys: ``n``, ``seed``, ``exponent``, ``follow_up``, ``ambiguous``, ``chitchat``,
    ``inconsistency``. Raises :class:`DatasetError` for an unknown name, key or a bad value.
    """
    text = str(spec)
    if not is_synthetic_spec(text):
        raise DatasetError(text, None, "not a synthetic dataset spec (synthetic:<name>)")
    name, _, opts = text[len("synthetic:"):].partition(":")
    if name not in SYNTHETIC_DATASETS:
        raise DatasetError(text, None, f"unknown synthetic dataset {name!r}; built in: {', '.join(SYNTHETIC_DATASETS)}")
    options: dict[str, Any] = {}
    for part in filter(None, opts.split(",")):
        key, eq, value = part.partition("=")
        if not eq or key.strip() not in _SPEC_KEYS:
            raise DatasetError(text, None, f"bad option {part!r}; use k=v with k in {', '.join(_SPEC_KEYS)}")
        target, kind = _SPEC_KEYS[key.strip()]
        try:
            options[target] = kind(value.strip())
        except ValueError as exc:
            raise DatasetError(text, None, f"option {key}: {value!r} is not a valid {kind.__name__}") from exc
    return name, options


def read_synthetic(
    spec: Path | str, *, lang: str | None = None, limit: int | None = None, stats: ReadStats | None = None
) -> Iterator[FCLogEvent]:
    """Events of a ``synthetic:`` spec: ``n`` from the spec, else ``limit``, else :data:`DEFAULT_EVENTS`.

    ``lang`` restricts the languages (``zh`` or ``en``). Options are checked at the call.
    """
    _, options = parse_synthetic_spec(spec)
    n = options.pop("n", None)
    n = n if n is not None else (limit if limit is not None else DEFAULT_EVENTS)
    if limit is not None:
        n = min(n, limit)
    if lang is not None:
        if lang not in LANGUAGES:
            raise DatasetError(str(spec), None, f"synthetic music languages are {LANGUAGES}, not {lang!r}")
        options["languages"] = (lang,)
    try:
        records = iter_music_records(n, **options)
    except ValueError as exc:
        raise DatasetError(str(spec), None, str(exc)) from exc
    counters = stats if stats is not None else ReadStats()

    def _events() -> Iterator[FCLogEvent]:
        for r in records:
            counters.records += 1
            counters.per_file[f"{SOURCE_PREFIX}/{r.lang}"] += 1
            yield r.event

    return _events()
