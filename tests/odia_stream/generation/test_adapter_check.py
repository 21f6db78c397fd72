"""The adapter checks every generator backend runs before loading: base model, peft folder, sha256."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from odia_stream.generation.adapter_check import verify_adapter
from odia_stream.generation.adapter_digest import adapter_sha256
from odia_stream.generation.protocol import (
    AdapterBaseMismatch,
    AdapterError,
    AdapterIntegrityError,
    AdapterRef,
)

BASE = "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.fixture()
def ref(tmp_path: Path) -> AdapterRef:
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text('{"r": 4}')
    (folder / "adapter_model.safetensors").write_bytes(b"\x00" * 64)
    return AdapterRef(version="a-000000000001", path=folder, sha256=adapter_sha256(folder), base_model=BASE)


def test_an_intact_adapter_passes(ref: AdapterRef) -> None:
    verify_adapter(ref, (BASE,))
    verify_adapter(ref, ("another/base", BASE))


def test_another_base_model_is_refused(ref: AdapterRef) -> None:
    with pytest.raises(AdapterBaseMismatch, match="trained on .*this generator serves 'other/base'"):
        verify_adapter(ref, ("other/base",))


def test_a_folder_without_peft_config_is_refused(ref: AdapterRef) -> None:
    (ref.path / "adapter_config.json").unlink()
    with pytest.raises(AdapterError, match="not a peft adapter folder"):
        verify_adapter(ref, (BASE,))


def test_changed_files_fail_the_sha256(ref: AdapterRef) -> None:
    with pytest.raises(AdapterIntegrityError, match="hash to"):
        verify_adapter(dataclasses.replace(ref, sha256="0" * 64), (BASE,))
    (ref.path / "adapter_model.safetensors").write_bytes(b"\x01" * 64)
    with pytest.raises(AdapterIntegrityError, match="hash to"):
        verify_adapter(ref, (BASE,))
