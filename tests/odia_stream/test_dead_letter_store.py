"""The dead-letter store: values kept whole, content-addressed, and dead letters that always fit."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from odia_stream.dead_letter_store import DeadLetterStore, open_dead_letter_store
from odia_stream.settings import DeadLetterSettings, OdiaSettings
from schemas import DeadLetter


def test_values_are_kept_whole_under_their_sha256(tmp_path: Path) -> None:
    store = DeadLetterStore(str(tmp_path / "dlq"))
    value = b"\x00" * 200_000
    uri = store.put(value)
    assert uri == store.put(value, hashlib.sha256(value).hexdigest()), "the same value is one file"
    assert uri.startswith("file://") and uri.endswith(hashlib.sha256(value).hexdigest() + ".bin")
    assert store.get(uri) == value and len(list((tmp_path / "dlq").iterdir())) == 1
    with pytest.raises(ValueError, match="is not the value's"):
        store.put(b"x", "0" * 64)
    assert DeadLetterStore((tmp_path / "dlq").as_uri()).get(uri) == value, "file:// roots work too"


def test_a_dead_letter_of_any_size_fits_and_names_the_whole_value(tmp_path: Path) -> None:
    settings = OdiaSettings(state_dir=tmp_path, dead_letters=DeadLetterSettings(max_inline_bytes=1024))
    store = open_dead_letter_store(settings)
    value = bytes(range(256)) * 4096  # 1 MiB
    letter = DeadLetter.of_record("too_large", "too large", topic="t", partition=0, offset=3, key=b"k", value=value,
                                  max_inline_bytes=settings.dead_letters.max_inline_bytes, store=store.put)
    assert len(letter.model_dump_json()) < 4096
    assert letter.raw() == value[:1024] and letter.raw_truncated and letter.raw_size == len(value)
    assert letter.raw_sha256 == hashlib.sha256(value).hexdigest()
    assert letter.raw_uri is not None and store.get(letter.raw_uri) == value
    small = DeadLetter.of_record("not_json", "x", topic="t", partition=0, offset=4, key=None, value=b"{",
                                 max_inline_bytes=1024, store=store.put)
    assert small.raw() == b"{" and not small.raw_truncated and small.raw_uri is None and small.raw_size == 1
    assert str(tmp_path.resolve() / "dead-letters") in letter.raw_uri
