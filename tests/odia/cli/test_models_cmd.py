"""``odia models list | promote | rollback`` through typer's runner, and publishing to the real broker."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer
from typer.testing import CliRunner

from odia.cli.main import app
from odia_stream.adapters.registry import AdapterEntry, AdapterRegistry
from odia_stream.settings import get_settings
from schemas import ModelUpdate

runner = CliRunner()


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Settings from the environment (as the CLI reads them): a fresh state dir; the registry root."""
    monkeypatch.setenv("ODIA_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("COLUMNS", "250")
    get_settings.cache_clear()
    yield tmp_path / "state" / "adapters"
    get_settings.cache_clear()


def register(root: Path, tmp_path: Path, names: str) -> list[AdapterEntry]:
    registry = AdapterRegistry(root)
    entries = []
    for n in names:
        folder = tmp_path / f"src-{n}"
        folder.mkdir()
        (folder / "adapter_config.json").write_text(json.dumps({"r": 8}))
        (folder / "adapter_model.safetensors").write_bytes(n.encode() * 100)
        entries.append(registry.register(folder, base_model="smollm2-135m-instruct-0.1.2", eval_metrics={"accuracy": 0.95}))
    return entries


def test_list_promote_rollback_without_publishing(env: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 0 and "no adapters" in result.output
    a, b = register(env, tmp_path, "ab")

    result = runner.invoke(app, ["models", "promote", a.version, "--no-publish"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["models", "promote", b.version, "--no-publish"])
    assert result.exit_code == 0 and f"was {a.version}" in result.output
    assert AdapterRegistry(env).current() == b

    result = runner.invoke(app, ["models", "list", "--verify"])
    assert result.exit_code == 0, result.output
    lines = {v: next(line for line in result.output.splitlines() if v in line) for v in (a.version, b.version)}
    assert "*" in lines[b.version] and "*" not in lines[a.version]
    assert "accuracy=0.95" in lines[a.version] and "yes" in lines[a.version]

    result = runner.invoke(app, ["models", "rollback", "--no-publish"])
    assert result.exit_code == 0 and f"current: {a.version}" in result.output
    assert AdapterRegistry(env).current() == a

    result = runner.invoke(app, ["models", "rollback", "--no-publish"])
    assert result.exit_code == 1 and "cannot roll back" in result.output
    result = runner.invoke(app, ["models", "promote", "a-000000000000", "--no-publish"])
    assert result.exit_code == 1 and "no adapter" in result.output
    result = runner.invoke(app, ["models", "rollback", "--steps", "0", "--no-publish"])
    assert result.exit_code == 2


def test_promote_and_rollback_publish_model_updates(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kafka_bootstrap: str
) -> None:
    topic = f"odia.model-updates.{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("ODIA_KAFKA__BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("ODIA_TOPICS__MODEL_UPDATES__NAME", topic)
    monkeypatch.setenv("ODIA_GENERATOR__NAME", "small-test")
    get_settings.cache_clear()
    a, b = register(env, tmp_path, "ab")
    for args in (["promote", a.version], ["promote", b.version], ["rollback"]):
        result = runner.invoke(app, ["models", *args])
        assert result.exit_code == 0, result.output
        assert "published" in result.output

    consumer = Consumer(
        {"bootstrap.servers": kafka_bootstrap, "group.id": f"t-{uuid.uuid4().hex[:8]}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    messages = []
    try:
        for _ in range(60):
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                messages.append(msg)
            if len(messages) == 3:
                break
    finally:
        consumer.close()
    assert len(messages) == 3
    assert {m.key() for m in messages} == {b"small-test"}
    updates = [ModelUpdate.model_validate_json(m.value()) for m in messages]
    assert [(u.version, u.previous_version) for u in updates] == [
        (a.version, None), (b.version, a.version), (a.version, b.version)
    ]
    assert all(u.sha256 == a.sha256 for u in (updates[0], updates[2])) and updates[1].sha256 == b.sha256
    assert updates[0].base_model == "smollm2-135m-instruct-0.1.2" and updates[0].eval_metrics == {"accuracy": 0.95}
    assert updates[0].adapter_uri == a.path.resolve().as_uri()


def test_an_unsupported_registry_uri_fails_clearly(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ODIA_TRAINER__ADAPTER_REGISTRY", "s3://bucket/adapters")
    get_settings.cache_clear()
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 2 and "only local paths and file://" in result.output
