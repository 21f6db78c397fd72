"""The cache-folder builder never exposes a half-written folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from odia_stream.embedding.atomic_folder import COMPLETE_MARKER, build_folder_once, is_complete


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
