"""The content-addressed adapter registry: digests, versions, promote/rollback, tampering, updates."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from odia_stream.generation.adapter_digest import adapter_sha256, version_of
from odia_stream.adapters.registry import (
    AdapterNotFound,
    AdapterRegistry,
    RegistryError,
    UnsupportedRegistryURI,
    open_registry,
    path_from_uri,
    registry_root,
)
from odia_stream.prompting import PROMPT_FORMAT_VERSION
from odia_stream.settings import OdiaSettings, TrainerSettings
from schemas import ModelUpdate


def make_adapter(folder: Path, weights: bytes, *, config: dict | None = None) -> Path:
    """A folder shaped like a peft adapter (config + weights + a nested file)."""
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps(config or {"r": 8, "peft_type": "LORA"}))
    (folder / "adapter_model.safetensors").write_bytes(weights)
    (folder / "extra").mkdir()
    (folder / "extra" / "notes.txt").write_text("trained on SNIPS")
    return folder


def independent_sha256(folder: Path) -> str:
    """The documented digest, recomputed here without the registry's code."""
    h = hashlib.sha256()
    files = sorted(
        (os.path.relpath(os.path.join(d, f), folder).replace(os.sep, "/") for d, _, fs in os.walk(folder) for f in fs)
    )
    for rel in files:
        data = (folder / rel).read_bytes()
        h.update(rel.encode() + b"\0" + len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


@pytest.fixture()
def registry(tmp_path: Path) -> AdapterRegistry:
    return AdapterRegistry(tmp_path / "registry")


def test_sha256_matches_an_independent_computation(tmp_path: Path) -> None:
    folder = make_adapter(tmp_path / "a", b"\x00\x01weights" * 1000)
    assert adapter_sha256(folder) == independent_sha256(folder)
    assert version_of(adapter_sha256(folder)) == "a-" + independent_sha256(folder)[:12]


def test_sha256_ignores_timestamps_but_not_names_or_bytes(tmp_path: Path) -> None:
    folder = make_adapter(tmp_path / "a", b"w1")
    digest = adapter_sha256(folder)
    os.utime(folder / "adapter_model.safetensors", (1, 1))
    assert adapter_sha256(folder) == digest
    (folder / "adapter_model.safetensors").rename(folder / "adapter_model2.safetensors")
    assert adapter_sha256(folder) != digest


def test_empty_or_missing_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no files"):
        adapter_sha256(tmp_path / "empty")
    with pytest.raises(FileNotFoundError):
        adapter_sha256(tmp_path / "missing")


def test_register_stores_a_read_only_copy_with_its_entry(registry: AdapterRegistry, tmp_path: Path) -> None:
    src = make_adapter(tmp_path / "src", b"weights-1")
    entry = registry.register(
        src, base_model="smollm2-135m-instruct-0.1.2", eval_metrics={"accuracy": 0.97}, router_version="r-1"
    )
    digest = independent_sha256(src)
    assert entry.sha256 == digest and entry.version == "a-" + digest[:12]
    assert entry.path == registry.root / entry.version / "adapter"
    assert independent_sha256(entry.path) == digest
    stored = json.loads((registry.root / entry.version / "entry.json").read_text())
    assert stored["version"] == entry.version and stored["sha256"] == digest
    assert stored["base_model"] == "smollm2-135m-instruct-0.1.2" and stored["eval_metrics"] == {"accuracy": 0.97}
    assert stored["router_version"] == "r-1" and stored["parent"] is None and "created_at" in stored
    assert not (entry.path / "adapter_model.safetensors").stat().st_mode & stat.S_IWUSR
    assert registry.get(entry.version) == entry
    assert src.is_dir()  # copied, the source is left alone
    assert not any((registry.root / ".staging").iterdir())


def test_identical_content_returns_the_existing_version(registry: AdapterRegistry, tmp_path: Path) -> None:
    first = registry.register(make_adapter(tmp_path / "a", b"same"), base_model="m", eval_metrics={"accuracy": 0.9})
    second = registry.register(make_adapter(tmp_path / "b", b"same"), base_model="m", eval_metrics={"accuracy": 0.5})
    assert second == first and second.eval_metrics == {"accuracy": 0.9}
    assert [e.version for e in registry.list()] == [first.version]


def test_different_content_gets_a_different_version(registry: AdapterRegistry, tmp_path: Path) -> None:
    a = registry.register(make_adapter(tmp_path / "a", b"one"), base_model="m")
    b = registry.register(make_adapter(tmp_path / "b", b"two"), base_model="m", parent=a.version)
    c = registry.register(make_adapter(tmp_path / "c", b"one", config={"r": 16}), base_model="m")
    assert len({a.version, b.version, c.version}) == 3
    assert b.parent == a.version
    assert [e.version for e in registry.list()] == [a.version, b.version, c.version]


def test_unknown_parent_or_version_is_refused(registry: AdapterRegistry, tmp_path: Path) -> None:
    with pytest.raises(AdapterNotFound):
        registry.register(make_adapter(tmp_path / "a", b"x"), base_model="m", parent="a-000000000000")
    for bad in ("a-000000000000", "", "../x", ".staging"):
        with pytest.raises(AdapterNotFound):
            registry.get(bad)


def test_promote_and_rollback_move_the_current_pointer(registry: AdapterRegistry, tmp_path: Path) -> None:
    a, b, c = (registry.register(make_adapter(tmp_path / n, n.encode()), base_model="m") for n in "abc")
    assert registry.current() is None
    with pytest.raises(RegistryError, match="roll back"):
        registry.rollback()
    registry.promote(a.version)
    registry.promote(b.version)
    registry.promote(b.version)  # promoting the current version again changes nothing
    registry.promote(c.version)
    assert registry.current() == c
    assert (registry.root / "CURRENT").read_text().strip() == c.version
    assert registry.rollback() == b and registry.current() == b
    assert (registry.root / "CURRENT").read_text().strip() == b.version
    registry.promote(c.version)
    assert registry.rollback(steps=2) == a and registry.current() == a
    with pytest.raises(RegistryError):
        registry.rollback()
    with pytest.raises(ValueError):
        registry.rollback(steps=0)
    actions = [(e.action, e.version, e.previous) for e in registry.history()]
    assert actions == [
        ("promote", a.version, None),
        ("promote", b.version, a.version),
        ("promote", c.version, b.version),
        ("rollback", b.version, c.version),
        ("promote", c.version, b.version),
        ("rollback", a.version, c.version),
    ]
    # The state survives reopening, and a torn history line from a crash is skipped and closed off.
    with (registry.root / "history.jsonl").open("a") as f:
        f.write('{"action": "prom')
    reopened = AdapterRegistry(registry.root)
    assert reopened.current() == a
    reopened.promote(b.version)
    assert AdapterRegistry(registry.root).current() == b


def test_current_file_is_repaired_from_history_after_a_crash(registry: AdapterRegistry, tmp_path: Path) -> None:
    a, b = (registry.register(make_adapter(tmp_path / n, n.encode()), base_model="m") for n in "ab")
    registry.promote(a.version)
    registry.promote(b.version)
    (registry.root / "CURRENT").write_text(a.version + "\n")  # history written, CURRENT not yet
    AdapterRegistry(registry.root)
    assert (registry.root / "CURRENT").read_text().strip() == b.version


def test_verify_detects_tampering_and_promotion_refuses_it(registry: AdapterRegistry, tmp_path: Path) -> None:
    a = registry.register(make_adapter(tmp_path / "a", b"original"), base_model="m")
    b = registry.register(make_adapter(tmp_path / "b", b"second"), base_model="m")
    assert registry.verify(a.version)
    weights = a.path / "adapter_model.safetensors"
    weights.chmod(0o644)
    weights.write_bytes(b"0riginal")
    assert not registry.verify(a.version)
    with pytest.raises(RegistryError, match="sha256"):
        registry.promote(a.version)
    registry.promote(b.version)
    (b.path / "extra" / "notes.txt").unlink()
    assert not registry.verify(b.version)


def test_model_update_carries_the_entry(registry: AdapterRegistry, tmp_path: Path) -> None:
    a = registry.register(
        make_adapter(tmp_path / "a", b"w"), base_model="smollm2-135m-instruct-0.1.2",
        eval_metrics={"accuracy": 0.96, "p99_ms": 240.0}, router_version="r-7",
    )
    update = registry.to_model_update(a, "small", previous_version="a-000000000001")
    assert isinstance(update, ModelUpdate)
    assert update.generator == "small" and update.version == a.version and update.sha256 == a.sha256
    assert update.base_model == "smollm2-135m-instruct-0.1.2" and update.router_version == "r-7"
    assert update.eval_metrics == {"accuracy": 0.96, "p99_ms": 240.0}
    assert update.previous_version == "a-000000000001"
    assert path_from_uri(update.adapter_uri) == a.path.resolve()
    assert ModelUpdate.model_validate_json(update.model_dump_json()) == update
    # The prompt format it was trained on travels with it; records from before the field read as 1.
    assert a.prompt_format == update.prompt_format == PROMPT_FORMAT_VERSION == 4
    old = json.loads(update.model_dump_json())
    del old["prompt_format"]
    assert ModelUpdate.model_validate(old).prompt_format == 1
    b = registry.register(make_adapter(tmp_path / "b", b"v1"), base_model="m", prompt_format=1)
    assert registry.get(b.version).prompt_format == registry.to_model_update(b, "small").prompt_format == 1


def test_registry_root_setting(tmp_path: Path) -> None:
    assert registry_root(OdiaSettings(state_dir=tmp_path)) == tmp_path / "adapters"
    uri = (tmp_path / "reg dir").as_uri()
    settings = OdiaSettings(state_dir=tmp_path, trainer=TrainerSettings(adapter_registry=uri))
    assert registry_root(settings) == tmp_path / "reg dir"
    assert open_registry(settings).root.is_dir()
    for bad in ("s3://bucket/adapters", "https://example.com/adapters", "file://otherhost/x"):
        with pytest.raises(UnsupportedRegistryURI):
            registry_root(OdiaSettings(state_dir=tmp_path, trainer=TrainerSettings(adapter_registry=bad)))
