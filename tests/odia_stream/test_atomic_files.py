"""Atomic files and folders: a reader never sees a half-written one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from odia_stream.atomic_files import (
    COMPLETE_MARKER,
    build_folder_once,
    is_complete,
    publish_folder,
    staging_folder,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)


def _writer(calls: list[Path]):
    def build(out: Path) -> None:
        calls.append(out)
        out.mkdir()
        (out / "weights.bin").write_bytes(b"\x01" * 1024)

    return build


def test_builds_once_then_reuses(tmp_path: Path) -> None:
    calls: list[Path] = []
    final = tmp_path / "cache" / "model"
    assert build_folder_once(final, _writer(calls), {"v": 1}) == final
    assert build_folder_once(final, _writer(calls), {"v": 1}) == final
    assert len(calls) == 1
    assert is_complete(final) and (final / "weights.bin").stat().st_size == 1024
    assert '"v": 1' in (final / COMPLETE_MARKER).read_text()
    assert sorted(p.name for p in final.parent.iterdir()) == ["model"]  # no temporary left


def test_failed_build_leaves_nothing(tmp_path: Path) -> None:
    def crash(out: Path) -> None:
        out.mkdir()
        (out / "weights.bin").write_bytes(b"half")
        raise RuntimeError("killed mid-write")

    final = tmp_path / "model"
    with pytest.raises(RuntimeError, match="mid-write"):
        build_folder_once(final, crash, {})
    assert not final.exists()
    assert list(tmp_path.iterdir()) == []


def test_folder_without_marker_is_rebuilt(tmp_path: Path) -> None:
    final = tmp_path / "model"
    final.mkdir()
    (final / "weights.bin").write_bytes(b"half")  # e.g. left by an interrupted copy
    calls: list[Path] = []
    build_folder_once(final, _writer(calls), {})
    assert len(calls) == 1
    assert (final / "weights.bin").stat().st_size == 1024 and is_complete(final)


def test_concurrent_winner_is_used(tmp_path: Path) -> None:
    final = tmp_path / "model"

    def slow_loser(out: Path) -> None:
        # another process completes the folder while this one is still building
        build_folder_once(final, _writer([]), {"winner": True})
        _writer([])(out)

    assert build_folder_once(final, slow_loser, {"winner": False}) == final
    assert '"winner": true' in (final / COMPLETE_MARKER).read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_write_replaces_whole_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "CURRENT"
    write_text_atomic(target, "a-1\n")
    write_text_atomic(target, "a-2\n")
    assert target.read_text(encoding="utf-8") == "a-2\n"
    write_bytes_atomic(tmp_path / "blob", b"\r\n\x00")
    assert (tmp_path / "blob").read_bytes() == b"\r\n\x00"  # bytes as given, no newline translation
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CURRENT", "blob"]


def test_write_json_formats_like_json_dumps(tmp_path: Path) -> None:
    data = {"b": [1, 2], "a": "周杰伦"}
    write_json_atomic(tmp_path / "d.json", data)
    written = (tmp_path / "d.json").read_text(encoding="utf-8")
    assert written == json.dumps(data, indent=2, sort_keys=True) + "\n"
    write_json_atomic(tmp_path / "d.json", data, indent=1, ensure_ascii=False, sort_keys=False)
    written = (tmp_path / "d.json").read_text(encoding="utf-8")
    assert written == json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "meta.json"
    write_json_atomic(target, {"v": 1})
    with pytest.raises(TypeError):
        write_json_atomic(target, {"v": object()})
    with pytest.raises(TypeError):
        write_bytes_atomic(target, "not bytes")  # type: ignore[arg-type]
    assert json.loads(target.read_text()) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meta.json"]


def test_publish_folder_keeps_a_complete_one_and_replaces_an_incomplete_one(tmp_path: Path) -> None:
    final = tmp_path / "v1"

    def complete(folder: Path) -> bool:
        return (folder / "MANIFEST").is_file()

    final.mkdir()
    (final / "half").write_text("x")
    with staging_folder(tmp_path, prefix=".v1.") as tmp:
        (tmp / "out").mkdir()
        (tmp / "out" / "MANIFEST").write_text("first")
        publish_folder(tmp / "out", final, complete)
    assert sorted(p.name for p in final.iterdir()) == ["MANIFEST"]
    with staging_folder(tmp_path, prefix=".v1.") as tmp:
        (tmp / "out").mkdir()
        (tmp / "out" / "MANIFEST").write_text("second")
        publish_folder(tmp / "out", final, complete)
    assert (final / "MANIFEST").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v1"]


def test_staging_folder_is_removed_on_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), staging_folder(tmp_path, prefix=".x.") as tmp:
        (tmp / "file").write_text("half")
        raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []
