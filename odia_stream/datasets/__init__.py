"""Datasets as ``FCLogEvent`` streams: HammerBench, SNIPS and JSONL readers, Zipf resampling
for production-like repetition, and group-aware train/test splits.

>>> from pathlib import Path
>>> from odia_stream.datasets import load_dataset
>>> events = load_dataset(Path("../shared/datasets/hammerbench"), lang="zh", limit=10)  # doctest: +SKIP
"""

from odia_stream.datasets.base import DATASET_EPOCH, DatasetError, ReadStats, decode_bytes, group_of
from odia_stream.datasets.hammerbench import read_hammerbench
from odia_stream.datasets.jsonl import read_jsonl, write_jsonl
from odia_stream.datasets.loader import DatasetFormat, detect_format, load_dataset
from odia_stream.datasets.snips import read_snips, snips_tools
from odia_stream.datasets.split import split_by_group
from odia_stream.datasets.zipf import zipf_resample

__all__ = [
    "DATASET_EPOCH",
    "DatasetError",
    "DatasetFormat",
    "ReadStats",
    "decode_bytes",
    "detect_format",
    "group_of",
    "load_dataset",
    "read_hammerbench",
    "read_jsonl",
    "read_snips",
    "snips_tools",
    "split_by_group",
    "write_jsonl",
    "zipf_resample",
]
