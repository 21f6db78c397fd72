"""What every dataset reader shares: errors, read statistics, stable ids and group keys.

A reader records the *group* of each event (records that must stay on one side of a
train/test split, e.g. the rewrites of one HammerBench dialogue) at the end of
``FCLogEvent.source`` as ``;group=<key>``; :func:`group_of` reads it back.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from schemas import FCLogEvent

#: Timestamps of dataset events are ``DATASET_EPOCH + <ordinal in its file> seconds`` (deterministic).
DATASET_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)

#: Separator between the locator part of ``source`` and its group key.
GROUP_MARK = ";group="

_TURN_SUFFIX = re.compile(r"/turn\d+$")
_SURROGATES = re.compile("[\ud800-\udfff]")


class DatasetError(ValueError):
    """A dataset file (or one line of it) could not be read into events."""

    def __init__(self, path: Path | str, line_no: int | None, reason: str) -> None:
        self.path = Path(path)
        self.line_no = line_no
        self.reason = reason
        where = f"{self.path}:{line_no}" if line_no is not None else str(self.path)
        super().__init__(f"{where}: {reason}")


@dataclass
class ReadStats:
    """Counters a reader fills while it yields events (pass one in to inspect them)."""

    #: Events yielded per file name (``<lang>/<file>`` for HammerBench).
    per_file: Counter[str] = field(default_factory=Counter)
    #: Source records read (dialogues, utterances, JSONL lines with an event).
    records: int = 0
    #: Bad records/lines skipped in lenient mode.
    skipped: int = 0
    #: HammerBench calls whose function was not offered, fixed by adding ``single_tool``'s schema.
    tool_added: int = 0
    #: First few problems seen (``path:line: reason``), for reports.
    problems: list[str] = field(default_factory=list)

    @property
    def events(self) -> int:
        """Events yielded."""
        return self.per_file.total()

    def note_problem(self, message: str, keep: int = 50) -> None:
        """Remember a problem (up to ``keep`` of them)."""
        if len(self.problems) < keep:
            self.problems.append(message)

    def skip_or_raise(
        self, error: DatasetError, *, strict: bool, log: logging.Logger, cause: BaseException | None = None
    ) -> None:
        """A bad record: raise ``error`` (from ``cause``) when ``strict``; else count, note and log it.

        >>> stats = ReadStats()
        >>> stats.skip_or_raise(DatasetError("a.jsonl", 3, "not JSON"), strict=False, log=logging.getLogger())
        >>> stats.skipped, stats.problems
        (1, ['a.jsonl:3: not JSON'])
        """
        if strict:
            raise error from cause
        self.skipped += 1
        self.note_problem(str(error))
        log.warning("skipping %s", error)


def stable_hash(text: str, length: int = 16) -> str:
    """Hex prefix of SHA-1 over ``text`` (UTF-8): stable across runs and machines."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:length]


def dataset_timestamp(ordinal: int) -> datetime:
    """Deterministic timestamp of the ``ordinal``-th event of a dataset file."""
    return DATASET_EPOCH + timedelta(seconds=ordinal)


def with_group(locator: str, group: str) -> str:
    """``source`` text: the record's locator plus its group key."""
    return f"{locator}{GROUP_MARK}{group}"


def group_of(event: FCLogEvent) -> str:
    """The split group of ``event``.

    The ``;group=`` key of its ``source`` when a reader recorded one; otherwise its source
    without a trailing ``/turn<k>`` (turns of one record stay together); otherwise its
    ``event_id`` up to a ``#`` resampling suffix.
    """
    source = event.source
    if source:
        if GROUP_MARK in source:
            return source.rsplit(GROUP_MARK, 1)[1]
        return _TURN_SUFFIX.sub("", source)
    return event.event_id.split("#", 1)[0]


def fix_text(text: str) -> str:
    """Replace lone UTF-16 surrogates (unencodable in UTF-8) with U+FFFD."""
    return _SURROGATES.sub("\ufffd", text)


def decode_bytes(raw: bytes) -> str:
    """Decode a dataset file's bytes robustly.

    UTF-8 first (a BOM is dropped). Failing that, UTF-8 whose astral characters were written
    as two 3-byte surrogates (CESU-8, as in SNIPS ``train_PlayMusic_full.json``): surrogate
    pairs are joined, lone ones become U+FFFD. Failing that, cp1252, then latin-1 (never fails).
    """
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        text = raw.decode("utf-8-sig", "surrogatepass")
    except UnicodeDecodeError:
        try:
            return raw.decode("cp1252")
        except UnicodeDecodeError:
            return raw.decode("latin-1")
    # Join surrogate pairs by a UTF-16 round trip; what is left unpaired is replaced.
    joined = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    return fix_text(joined)
