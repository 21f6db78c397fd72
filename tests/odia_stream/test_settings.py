"""The one settings object: environment names, nesting, partial nested values."""

from __future__ import annotations

from pathlib import Path

import pytest

from odia_stream.settings import OdiaSettings


def test_one_topic_field_alone_keeps_the_rest_of_the_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ODIA_TOPICS__FC_LOGS__PARTITIONS", "8")
    s = OdiaSettings()
    assert s.topics.fc_logs.partitions == 8
    assert s.topics.fc_logs.name == "odia.fc-logs"
    assert s.topics.cluster_state.compacted and s.topics.cluster_state.name == "odia.cluster-state"


def test_nested_groups_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ODIA_KAFKA__BOOTSTRAP_SERVERS", "kafka:9092")
    monkeypatch.setenv("ODIA_TRAINER__MAX_STEPS", "7")
    monkeypatch.setenv("ODIA_CLUSTERING", '{"scope": "context"}')
    s = OdiaSettings()
    assert s.kafka.bootstrap_servers == "kafka:9092"
    assert s.trainer.max_steps == 7
    assert s.clustering.scope == "context" and s.clustering.min_support == 5


def test_bad_values_are_clear_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ODIA_CLUSTERING__SIMPLE_SHARE", "1.5")
    with pytest.raises(ValueError, match="simple_share"):
        OdiaSettings()


def test_the_model_cache_follows_the_state_dir_unless_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert OdiaSettings(state_dir=tmp_path / "s").cache_dir == tmp_path / "s" / "cache"
    monkeypatch.setenv("ODIA_MODEL_CACHE_DIR", str(tmp_path / "shared"))
    assert OdiaSettings(state_dir=tmp_path / "s").cache_dir == tmp_path / "shared"
