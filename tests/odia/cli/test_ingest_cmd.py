"""``odia ingest audit`` as a person runs it (its own process), on a learner state written here."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from odia.runner import settings_env
from odia_stream.clustering.state_db import LearnerStateDB
from odia_stream.settings import OdiaSettings

ODIA = str(Path(sys.executable).parent / "odia")


def _audit_state(settings: OdiaSettings, applied: int) -> None:
    """A learner state whose audit covers offsets 0-9 of ``fc``/0, applied up to ``applied``."""
    db = LearnerStateDB(settings.learner_dir / "learner.sqlite")
    try:
        db.begin()
        db.add_audit(
            {("fc", 0): Counter(read=12, accepted=7, duplicate=1, replayed=2, **{"dead_letter:not_json": 2})},
            {("fc", 0): 0},
            [("fc", 0, 3, "0" * 64, "not_json"), ("fc", 0, 4, "1" * 64, "not_json")],
        )
        db.set_applied({("fc", 0): applied})
        db.commit()
    finally:
        db.close()


def _run(settings: OdiaSettings) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings_env(settings), "COLUMNS": "200", "TERM": "dumb"}
    return subprocess.run([ODIA, "ingest", "audit", "--no-broker"], env=env, text=True, capture_output=True, timeout=120)


def test_an_audit_that_adds_up_exits_0(tmp_path: Path) -> None:
    settings = OdiaSettings(state_dir=tmp_path / "state")
    _audit_state(settings, applied=9)
    done = _run(settings)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "not_json 2" in done.stdout and "yes" in done.stdout


def test_offsets_without_an_outcome_exit_1_and_say_how_many(tmp_path: Path) -> None:
    settings = OdiaSettings(state_dir=tmp_path / "state")
    _audit_state(settings, applied=12)  # offsets 10-12 applied but never counted
    done = _run(settings)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "3 offset(s) with no outcome" in done.stdout


def test_no_state_yet(tmp_path: Path) -> None:
    done = _run(OdiaSettings(state_dir=tmp_path / "none"))
    assert done.returncode == 0 and "no audited input yet" in done.stdout
