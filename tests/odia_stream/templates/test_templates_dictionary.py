"""EntityDictionary: type normalisation, counts, versions, file formats and round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from odia_stream.templates import EntityDictionary, EntryInfo, normalize_text, normalize_type


def entry(d: EntityDictionary, etype: str, value: str) -> EntryInfo:
    info = d.get(etype, value)
    assert info is not None, (etype, value)
    return info


SEED = Path(__file__).resolve().parents[3] / "odia_stream" / "data" / "entities" / "music_zh_en.tsv"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Singer", "singer"), ("  SONG_NAME\t", "song_name"), ("Artist.Name", "artist.name"), ("歌手", "歌手")],
)
def test_type_names_are_normalised(raw: str, expected: str) -> None:
    assert normalize_type(raw) == expected
    d = EntityDictionary()
    d.add(raw, "周杰伦")
    assert d.types() == [expected]
    assert d.get(expected.upper(), "周杰伦") is not None


@pytest.mark.parametrize("bad", ["", "   ", "song name", "<song>", "a>b"])
def test_bad_type_names_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        normalize_type(bad)
    with pytest.raises(ValueError):
        EntityDictionary().add(bad, "x y")


def test_add_counts_sources_and_version() -> None:
    d = EntityDictionary()
    v0 = d.version
    assert d.add("singer", " Jay Chou ") is True
    assert d.add("SINGER", "jay   chou") is False  # same normalised value: count goes up
    assert d.version == v0 + 2
    assert len(d) == 1
    assert d.get("singer", "JAY CHOU") == EntryInfo("singer", "Jay Chou", 2, "learned")
    d.add("singer", "Jay Chou", source="file")
    assert entry(d, "singer", "jay chou").source == "file"  # a file entry stays "file"
    d.add("singer", "Jay Chou", source="learned")
    assert d.get("singer", "jay chou") == EntryInfo("singer", "Jay Chou", 4, "file")
    assert ("singer", "jay chou") in d and ("song", "jay chou") not in d


def test_values_and_types_of_are_ranked_deterministically() -> None:
    d = EntityDictionary()
    d.add("song", "演员")
    d.add("name", "演员")
    d.add("name", "演员")
    d.add("keywords", "演员")
    d.add("keywords", "演员")
    assert d.types_of("演员") == ("keywords", "name", "song")  # 2, 2 (alphabetical), 1
    d.add("song", "演员", count=5)
    assert d.types_of("演员")[0] == "song"
    d.add("song", "稻香", count=3)
    assert d.values("song") == ["演员", "稻香"]


def test_invalid_values_are_rejected() -> None:
    d = EntityDictionary()
    for bad in ["", "   ", "a\tb", "line\nbreak"]:
        with pytest.raises(ValueError):
            d.add("song", bad)
    with pytest.raises(ValueError):
        d.add("song", "稻香", source="guess")
    with pytest.raises(ValueError):
        d.add("song", "稻香", count=0)
    assert len(d) == 0 and d.version == 0


def test_remove_and_clear_bump_version() -> None:
    d = EntityDictionary()
    d.add("song", "稻香")
    d.add("keywords", "稻香")
    v = d.version
    assert d.remove("song", "稻香") is True
    assert d.remove("song", "稻香") is False
    assert d.types_of("稻香") == ("keywords",)
    d.clear()
    assert len(d) == 0 and d.version > v and d.types() == []


def test_load_tsv_with_comments_and_counts(tmp_path: Path) -> None:
    path = tmp_path / "music.tsv"
    path.write_text(
        "# music entities\n\nGenre\t摇滚\ngenre\tRock\t3\n  # indented comment\nsinger\t周杰伦\n",
        encoding="utf-8",
    )
    d = EntityDictionary()
    assert d.load(path) == 3
    assert d.types() == ["genre", "singer"]
    assert d.get("genre", "rock") == EntryInfo("genre", "Rock", 3, "file")
    assert entry(d, "singer", "周杰伦").source == "file"


@pytest.mark.parametrize(
    ("content", "line"),
    [
        ("genre\trock\nno tab on this line\n", 2),
        ("genre\trock\n# ok\n\ngenre\tpop\tmany\n", 4),
        ("genre\t\n", 1),
        ("a\tb\tc\td\n", 1),
        ("genre\tpop\t0\n", 1),
        ("genre\trock\nbad type\tpop\n", 2),
    ],
)
def test_bad_tsv_lines_name_the_line(tmp_path: Path, content: str, line: int) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text(content, encoding="utf-8")
    d = EntityDictionary()
    with pytest.raises(ValueError, match=rf"bad\.tsv:{line}: "):
        d.load(path)
    assert len(d) == 0  # nothing half-loaded


def test_load_json_list_and_count_formats(tmp_path: Path) -> None:
    path = tmp_path / "ents.json"
    path.write_text(json.dumps({"Singer": ["周杰伦", "Jay Chou"], "genre": {"jazz": 2}}), encoding="utf-8")
    d = EntityDictionary.from_file(path)
    assert len(d) == 3
    assert d.get("genre", "JAZZ") == EntryInfo("genre", "jazz", 2, "file")


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ("[1, 2]", "top level"),
        ('{"singer": "周杰伦"}', "'singer'"),
        ('{"singer": ["周杰伦", 3]}', r"'singer'.*\[1\]"),
        ('{"genre": {"jazz": -1}}', "count"),
        ('{"singer": [', "invalid JSON"),
    ],
)
def test_bad_json_is_a_clear_value_error(tmp_path: Path, payload: str, match: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(payload, encoding="utf-8")
    with pytest.raises(ValueError, match=match):
        EntityDictionary().load(path)


def test_save_load_round_trip_is_atomic(tmp_path: Path) -> None:
    d = EntityDictionary()
    d.add("singer", "周杰伦", count=3)
    d.add("singer", "Jay Chou", source="file")
    d.add("song", "Rice Fragrance")
    d.add("name", "周杰伦")
    path = tmp_path / "sub" / "dict.json"
    d.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["dict.json"]  # no temp file left behind
    d2 = EntityDictionary.from_file(path)
    assert list(d2.entries()) == list(d.entries())
    assert d2.types_of("周杰伦") == d.types_of("周杰伦") == ("singer", "name")
    d2.save(path)  # overwrite in place
    assert list(EntityDictionary.from_file(path).entries()) == list(d.entries())


def test_seed_dictionary_file_loads() -> None:
    d = EntityDictionary.from_file(SEED)
    assert {"genre", "mood"} <= set(d.types())
    assert d.get("genre", "摇滚") is not None and d.get("genre", "JAZZ") is not None


def test_normalize_text_nfkc_casefold_whitespace() -> None:
    assert normalize_text("ＪＡＹ  Chou") == "jay chou"
    assert normalize_text("Straße") == "strasse"
    assert normalize_text("周杰伦\u3000稻香") == "周杰伦 稻香"
