"""The checks every generator backend runs on an adapter before loading it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from odia_stream.generation.adapter_digest import adapter_sha256
from odia_stream.generation.protocol import (
    AdapterBaseMismatch,
    AdapterError,
    AdapterIntegrityError,
    AdapterRef,
)

__all__ = ["verify_adapter"]


def verify_adapter(ref: AdapterRef, accepted_bases: Sequence[str]) -> None:
    """Raise unless ``ref`` was trained on one of ``accepted_bases`` and its files hash to its sha256.

    Raises:
        AdapterBaseMismatch: ``ref.base_model`` is not accepted (the first one is what is served).
        AdapterError: ``ref.path`` is not a peft adapter folder (no ``adapter_config.json``).
        AdapterIntegrityError: the files cannot be read or hash to another sha256.
    """
    if ref.base_model not in accepted_bases:
        raise AdapterBaseMismatch(
            f"adapter {ref.version} was trained on {ref.base_model!r}; "
            f"this generator serves {accepted_bases[0]!r}"
        )
    path = Path(ref.path)
    if not (path / "adapter_config.json").is_file():
        raise AdapterError(
            f"adapter {ref.version}: {path} is not a peft adapter folder (no adapter_config.json)"
        )
    try:
        actual = adapter_sha256(path)
    except (OSError, ValueError) as exc:
        raise AdapterIntegrityError(f"adapter {ref.version}: cannot read {path}: {exc}") from exc
    if actual != ref.sha256:
        raise AdapterIntegrityError(
            f"adapter {ref.version}: files in {path} hash to {actual}, published as {ref.sha256}"
        )
