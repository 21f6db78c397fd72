"""Compare embedders on speed and on clustering quality over labelled query corpora.

Per embedder: load time, batch throughput, single-query latency (one query per call, as the
router embeds requests), and per corpus the purity and number of clusters of average-linkage
agglomerative clustering at the embedder's measured ``cluster_distance``.

    python -m odia.bench.embedder_comparison --corpora corpora.json \\
        --embedders e5-small,use-multilingual,minilm --cache-dir .odia/cache --out result.json

``corpora.json`` is ``{"name": [[texts...], [labels...]], ...}`` (labels = function names),
optionally with a third list of groups (clustering scopes, e.g. the learner's context key):
clusters are then formed within each group, as the learner does.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from odia.bench.common import loadavg, machine
from odia_stream.cluster_quality import adjusted_rand, cluster_purity
from odia_stream.embedding import (
    EMBEDDER_PROFILES,
    Embedder,
    EmbedderUnavailable,
    ThresholdProfile,
    build_embedder,
    calibrate_from_embedding_sets,
)
from odia_stream.embedding.calibration import LabelledTexts

__all__ = ["compare_embedders", "format_table", "main"]

#: ``{name: (texts, labels)}`` or ``{name: (texts, labels, groups)}``.
Corpora = Mapping[str, LabelledTexts]


#: Queries up to this many characters count as "short" (typical router requests).
SHORT_QUERY_CHARS = 64


def _latency_ms(embedder: Embedder, queries: Sequence[str], calls: int, desc: str) -> dict[str, float]:
    """p50/p99 ms of ``embed([q])`` over ``calls`` calls (after a short warm-up), also for short queries."""
    for q in queries[:5]:
        embedder.embed([q])
    samples: list[float] = []
    short: list[float] = []
    for i in tqdm(range(calls), desc=desc, unit="call", leave=False):
        q = queries[i % len(queries)]
        start = time.perf_counter()
        embedder.embed([q])
        took = (time.perf_counter() - start) * 1000
        samples.append(took)
        if len(q) <= SHORT_QUERY_CHARS:
            short.append(took)
    out = {
        "p50": round(float(np.percentile(samples, 50)), 2),
        "p99": round(float(np.percentile(samples, 99)), 2),
        "mean": round(float(np.mean(samples)), 2),
        "short_calls": len(short),
    }
    if short:
        out["short_p50"] = round(float(np.percentile(short, 50)), 2)
        out["short_p99"] = round(float(np.percentile(short, 99)), 2)
    return out


def _cluster(embeddings: np.ndarray, distance: float, groups: Sequence[str] | None = None) -> list[str]:
    """Average-linkage cosine clusters at ``distance`` (within each group when given), as ids."""
    from sklearn.cluster import AgglomerativeClustering

    keys = list(groups) if groups is not None else [""] * len(embeddings)
    members: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        members.setdefault(key, []).append(i)
    out = [""] * len(embeddings)
    for key, idx in members.items():
        if len(idx) < 2:
            local = [0] * len(idx)
        else:
            model = AgglomerativeClustering(
                metric="cosine", linkage="average", distance_threshold=distance, n_clusters=None
            )
            local = model.fit_predict(embeddings[idx]).tolist()
        for i, c in zip(idx, local):
            out[i] = f"{key}#{c}"
    return out


def _groups(corpus: LabelledTexts) -> list[str] | None:
    return [str(g) for g in corpus[2]] if len(corpus) > 2 else None  # type: ignore[misc]


def _one(
    name: str, corpora: Corpora, cache_dir: Path, latency_calls: int, queries: Sequence[str]
) -> dict[str, Any]:
    start = time.perf_counter()
    embedder = build_embedder(name, cache_dir)
    load_s = time.perf_counter() - start
    out: dict[str, Any] = {"model_id": embedder.model_id, "dim": embedder.dim, "load_s": round(load_s, 2)}

    embedded: dict[str, np.ndarray] = {}
    embed_qps: dict[str, float] = {}
    total, spent = 0, 0.0
    for corpus, data in corpora.items():
        texts = data[0]
        start = time.perf_counter()
        embedded[corpus] = embedder.embed(list(texts))
        took = time.perf_counter() - start
        embed_qps[corpus] = round(len(texts) / took, 1) if took > 0 else float("inf")
        spent += took
        total += len(texts)
    out["batch_qps"] = round(total / spent, 1) if spent > 0 else None
    out["single_query_ms"] = _latency_ms(embedder, queries, latency_calls, f"{name} latency")

    profile: ThresholdProfile | None = EMBEDDER_PROFILES.get(embedder.model_id)
    out["profile_source"] = "EMBEDDER_PROFILES"
    if profile is None:  # never borrow another model's thresholds: measure them on these corpora
        sets = [(embedded[c], list(data[1]), _groups(data)) for c, data in corpora.items()]
        profile = calibrate_from_embedding_sets(sets)
        out["profile_source"] = "calibrated on these corpora"
    out["profile"] = dict(profile.__dict__)

    out["corpora"] = {}
    for corpus, data in corpora.items():
        texts, labels, groups = data[0], list(data[1]), _groups(data)
        start = time.perf_counter()
        clusters = _cluster(embedded[corpus], profile.cluster_distance, groups)
        out["corpora"][corpus] = {
            "texts": len(texts),
            "embed_qps": embed_qps[corpus],
            "labels": len(set(labels)),
            "groups": len(set(groups)) if groups is not None else 1,
            "clusters": len(set(clusters)),
            "purity": round(cluster_purity(labels, clusters), 4),
            "ari": round(adjusted_rand(labels, clusters), 4),
            "cluster_s": round(time.perf_counter() - start, 2),
        }
    return out


def compare_embedders(
    names: Sequence[str],
    corpora: Corpora,
    cache_dir: Path,
    *,
    latency_calls: int = 200,
    seed: int = 0,
) -> dict[str, Any]:
    """Measure each embedder in ``names`` on ``corpora`` (``{name: (texts, function labels[, groups])}``).

    Returns a JSON-able dict: ``{"machine": {...}, "embedders": {name: {...} | {"error": ...}}}``.
    A profile missing from ``EMBEDDER_PROFILES`` is calibrated on the corpora (and says so).
    """
    pool = [t for data in corpora.values() for t in data[0]]
    if not pool:
        raise ValueError("corpora hold no texts")
    queries = random.Random(seed).sample(pool, min(len(pool), latency_calls))
    result: dict[str, Any] = {
        "machine": machine(loadavg_start=loadavg()),
        "latency_calls": latency_calls,
        "embedders": {},
    }
    # Import the shared heavy libraries first, so the first torch-based model's load time is
    # not inflated by them (a service pays this once at start-up).
    start = time.perf_counter()
    import sentence_transformers  # noqa: F401
    import torch

    result["machine"]["imports_s"] = round(time.perf_counter() - start, 2)
    result["machine"]["torch_threads"] = torch.get_num_threads()
    for name in tqdm(list(names), desc="embedders", unit="model"):
        try:
            result["embedders"][name] = _one(name, corpora, Path(cache_dir), latency_calls, queries)
        except EmbedderUnavailable as exc:
            result["embedders"][name] = {"error": exc.reason}
    result["machine"]["loadavg_end"] = loadavg()
    return result


def format_table(result: Mapping[str, Any]) -> str:
    """A markdown table of :func:`compare_embedders`' result."""
    embedders: Mapping[str, Any] = result["embedders"]
    corpora: list[str] = []
    for row in embedders.values():
        for corpus in row.get("corpora", {}):
            if corpus not in corpora:
                corpora.append(corpus)
    head = ["embedder", "load s", "batch q/s", "1-query p50 / p99 ms", f"short (<= {SHORT_QUERY_CHARS} chars) p50 / p99 ms"]
    head += [f"{c} purity / clusters" for c in corpora]
    head += ["cluster_distance", "merge_distance"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in embedders.items():
        if "error" in row:
            lines.append(f"| {name} | unavailable: {row['error']} |" + " |" * (len(head) - 2))
            continue
        cells = [
            f"`{name}`",
            f"{row['load_s']:.1f}",
            f"{row['batch_qps']:.0f}",
            f"{row['single_query_ms']['p50']:.1f} / {row['single_query_ms']['p99']:.1f}",
            (
                f"{row['single_query_ms']['short_p50']:.1f} / {row['single_query_ms']['short_p99']:.1f}"
                if "short_p50" in row["single_query_ms"]
                else "-"
            ),
        ]
        for corpus in corpora:
            c = row["corpora"].get(corpus)
            cells.append(f"{c['purity']:.3f} / {c['clusters']} (of {c['texts']})" if c else "-")
        cells += [f"{row['profile']['cluster_distance']:g}", f"{row['profile']['merge_distance']:g}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: run :func:`compare_embedders` on a corpora JSON file and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpora", type=Path, required=True, help='JSON {"name": [[texts], [labels]]}')
    ap.add_argument("--embedders", default="e5-small,e5-small-engine,use-multilingual,minilm")
    ap.add_argument("--cache-dir", type=Path, default=Path(".odia/cache"))
    ap.add_argument("--latency-calls", type=int, default=200)
    ap.add_argument("--out", type=Path, help="write the result as JSON here")
    args = ap.parse_args(argv)
    raw = json.loads(args.corpora.read_text(encoding="utf-8"))
    corpora: dict[str, LabelledTexts] = {}
    for name, data in raw.items():
        texts, labels = list(data[0]), [str(x) for x in data[1]]
        corpora[name] = (texts, labels, [str(x) for x in data[2]]) if len(data) > 2 else (texts, labels)
    result = compare_embedders(
        [n.strip() for n in args.embedders.split(",") if n.strip()],
        corpora,
        args.cache_dir,
        latency_calls=args.latency_calls,
    )
    if args.out:
        args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(format_table(result))


if __name__ == "__main__":
    main()
