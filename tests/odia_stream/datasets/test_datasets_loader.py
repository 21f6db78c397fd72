"""load_dataset: format detection by path, limits, languages, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from odia_stream.datasets import DatasetError, detect_format, load_dataset, write_jsonl


def test_detects_every_layout(datasets_dir: Path, tmp_path: Path) -> None:
    hb = datasets_dir / "hammerbench"
    snips = datasets_dir / "snips"
    assert detect_format(hb) == "hammerbench"
    assert detect_format(hb / "en") == "hammerbench"
    assert detect_format(hb / "en" / "ST_Perfect.json") == "hammerbench"
    assert detect_format(snips) == "snips"
    assert detect_format(snips / "validate_RateBook.json") == "snips"
    path = tmp_path / "x.jsonl"
    write_jsonl(load_dataset(snips / "validate_RateBook.json", limit=3), path)
    assert detect_format(path) == "jsonl"
    assert detect_format(tmp_path) == "jsonl"  # a folder of .jsonl files


def test_limit_and_lang(datasets_dir: Path) -> None:
    hb = datasets_dir / "hammerbench"
    events = list(load_dataset(hb, lang="en", limit=7))
    assert len(events) == 7 and all(e.source and e.source.startswith("hammerbench/en/") for e in events)
    assert list(load_dataset(hb, lang="en", limit=0)) == []
    assert len(list(load_dataset(datasets_dir / "snips" / "validate_GetWeather.json"))) == 100


def test_clear_errors(datasets_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DatasetError, match="unknown dataset layout"):
        load_dataset(tmp_path)
    with pytest.raises(DatasetError, match="unknown dataset layout"):
        load_dataset(tmp_path / "notes.txt")
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(tmp_path / "missing")
    with pytest.raises(DatasetError, match="English only"):
        load_dataset(datasets_dir / "snips", lang="zh")
    with pytest.raises(DatasetError, match="languages"):
        load_dataset(datasets_dir / "hammerbench", lang="fr")
    with pytest.raises(ValueError):
        load_dataset(datasets_dir / "snips", limit=-1)
