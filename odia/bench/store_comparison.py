"""Cluster-store backends compared: upsert rate, scoped top-5 search latency, optimize cost, RSS.

Random L2-normalised vectors spread over ~1000 scopes stand in for cluster representatives.
Every (backend, size) case runs in a fresh spawned process, so peak RSS is its own. Search is
measured through the ``ClusterIndex`` API (what the clusterer sees), before ``optimize()``
(points just added: plain segments) and after it, and again after 10% more upserts.

Backends: ``edge`` (qdrant-edge, default plain mode), ``edge-hnsw`` (qdrant-edge, HNSW built by
``optimize()``), ``qdrant-local`` (qdrant-client local mode on a path) and ``qdrant-memory``
(local mode ``:memory:``). qdrant-client local mode is brute-force numpy in Python, so its sizes
are capped (``qdrant_local_cap``); capped rows say so.

Run: ``python -m odia.bench.store_comparison --backends edge edge-hnsw qdrant-local``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm  # type: ignore[import-untyped]

from odia.bench.common import machine

BACKENDS = ("edge", "edge-hnsw", "qdrant-local", "qdrant-memory")
LABELS = ("simple", "complex")


def _rss_mb() -> float:
    """Current resident set size of this process in MB."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def _percentiles(samples: Sequence[float]) -> dict[str, float]:
    arr = np.asarray(samples, dtype=np.float64) * 1e3
    return {"p50_ms": float(np.percentile(arr, 50)), "p99_ms": float(np.percentile(arr, 99)), "n": len(arr)}


def _open(backend: str, workdir: Path, dim: int) -> Any:
    from odia_stream.store import EdgeClusterIndex, QdrantServerClusterIndex

    if backend == "edge":
        return EdgeClusterIndex(workdir / "edge", "bench-embedder", dim)
    if backend == "edge-hnsw":
        return EdgeClusterIndex(workdir / "edge", "bench-embedder", dim, index="hnsw")
    if backend == "qdrant-local":
        return QdrantServerClusterIndex(str(workdir / "qdrant"), "clusters", "bench-embedder", dim)
    if backend == "qdrant-memory":
        return QdrantServerClusterIndex(":memory:", "clusters", "bench-embedder", dim)
    raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")


def _points(vecs: np.ndarray, start: int, n_scopes: int, rng: np.random.Generator) -> list[Any]:
    from odia_stream.store import ClusterPoint

    return [
        ClusterPoint(
            start + i,
            vecs[i],
            {
                "scope": f"scope-{(start + i) % n_scopes}",
                "label": LABELS[int(rng.integers(2))],
                "dominant_function": f"fn_{(start + i) % 50}",
                "size": int(rng.integers(1, 500)),
                "version": 1,
            },
        )
        for i in range(len(vecs))
    ]


def _search_latency(index: Any, queries: np.ndarray, n_scopes: int, scoped: bool, n: int) -> dict[str, float]:
    times = []
    for i in range(min(n, len(queries))):
        scope = f"scope-{i % n_scopes}" if scoped else None
        t = time.perf_counter()
        index.search(queries[i], scope=scope, limit=5)
        times.append(time.perf_counter() - t)
    return _percentiles(times)


def _scoped_and_unscoped(
    index: Any, queries: np.ndarray, n_scopes: int, nq: int
) -> dict[str, dict[str, float]]:
    """Search latency within a scope (``nq`` queries) and over every point (a quarter of them, at least 10)."""
    return {
        "scoped": _search_latency(index, queries, n_scopes, True, nq),
        "unscoped": _search_latency(index, queries, n_scopes, False, max(nq // 4, 10)),
    }


def _recall_at_5(index: Any, data: np.ndarray, queries: np.ndarray, n: int) -> float:
    """Unfiltered top-5 recall against exact numpy search."""
    found = 0
    for q in queries[:n]:
        exact = set(np.argsort(-(data @ q))[:5].tolist())
        found += len(exact & {h.cluster_id for h in index.search(q, limit=5)})
    return found / (5 * n)


def _run_case(
    backend: str, size: int, dim: int, n_scopes: int, n_queries: int, seed: int, root: str
) -> dict[str, Any]:
    """One (backend, size) case; runs in its own process."""
    tqdm.set_lock(threading.RLock())  # no multiprocessing semaphores in the child
    rng = np.random.default_rng(seed)
    workdir = Path(tempfile.mkdtemp(prefix=f"store-{backend}-{size}-", dir=root))
    extra = size // 10
    data = _unit_rows(rng, size + extra, dim)
    queries = _unit_rows(np.random.default_rng(seed + 1), max(n_queries, 100), dim)
    local = backend.startswith("qdrant")
    nq = min(n_queries, 100) if local else n_queries
    baseline_rss = _rss_mb()
    out: dict[str, Any] = {"backend": backend, "size": size, "dim": dim, "n_scopes": n_scopes}
    try:
        index = _open(backend, workdir, dim)
        batch = 1000
        upsert_s = 0.0
        growing: list[dict[str, Any]] = []
        checkpoints = {size * k // 4 for k in (1, 2, 3)}
        bar = tqdm(total=size, desc=f"{backend} {size:,}", unit="pt", unit_scale=True, leave=False)
        for start in range(0, size, batch):
            pts = _points(data[start : start + batch], start, n_scopes, rng)
            t = time.perf_counter()
            index.upsert(pts)
            upsert_s += time.perf_counter() - t
            bar.update(len(pts))
            done = start + len(pts)
            if done in checkpoints:
                lat = _search_latency(index, queries, n_scopes, True, max(nq // 4, 10))
                growing.append({"points": done, "scoped_p50_ms": lat["p50_ms"]})
        bar.close()
        out["upserts_per_s"] = size / upsert_s
        out["scoped_p50_ms_while_growing"] = growing
        # Hot path of the clusterer: one centroid update, one payload merge.
        one = []
        for _ in range(100):
            cid = int(rng.integers(size))
            t = time.perf_counter()
            index.upsert(_points(data[cid : cid + 1], cid, n_scopes, rng))
            one.append(time.perf_counter() - t)
        out["upsert_one"] = _percentiles(one)
        sp = []
        for i in range(100):
            t = time.perf_counter()
            index.set_payload(int(rng.integers(size)), {"label": "simple", "version": i})
            sp.append(time.perf_counter() - t)
        out["set_payload"] = _percentiles(sp)
        out["before_optimize"] = _scoped_and_unscoped(index, queries, n_scopes, nq)
        t = time.perf_counter()
        index.optimize()
        out["optimize_s"] = time.perf_counter() - t
        out["after_optimize"] = {
            **_scoped_and_unscoped(index, queries, n_scopes, nq),
            "recall_at_5": _recall_at_5(index, data[:size], queries, 20 if local else 50),
        }
        for start in range(size, size + extra, batch):
            index.upsert(_points(data[start : min(start + batch, size + extra)], start, n_scopes, rng))
        out["after_10pct_more"] = _scoped_and_unscoped(index, queries, n_scopes, nq)
        t = time.perf_counter()
        index.flush()
        out["flush_s"] = time.perf_counter() - t
        if backend != "qdrant-memory":
            index.close()
            t = time.perf_counter()
            index = _open(backend, workdir, dim)
            out["reopen_s"] = time.perf_counter() - t
            out["count_after_reopen"] = index.count()
        index.close()
        out["peak_rss_mb"] = _peak_rss_mb()
        out["store_rss_mb"] = _peak_rss_mb() - baseline_rss
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return out


def compare_stores(
    sizes: Sequence[int] = (10_000, 100_000),
    dim: int = 384,
    backends: Sequence[str] = ("edge", "qdrant-local"),
    *,
    n_scopes: int = 1000,
    n_queries: int = 500,
    qdrant_local_cap: int = 10_000,
    seed: int = 0,
    workdir: str | Path | None = None,
) -> dict[str, Any]:
    """Benchmark each backend at each size (each case in a fresh process).

    qdrant-client local-mode backends are capped at ``qdrant_local_cap`` points (rows
    carry ``capped_from``); duplicate capped cases are run once.
    """
    for b in backends:
        if b not in BACKENDS:
            raise ValueError(f"unknown backend {b!r}; expected one of {BACKENDS}")
    root = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="odia-store-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    cases: list[tuple[str, int, int]] = []
    for b in backends:
        for s in sizes:
            run = min(s, qdrant_local_cap) if b.startswith("qdrant") else s
            if (b, run) not in {(c[0], c[1]) for c in cases}:
                cases.append((b, run, s))
    results = []
    ctx = mp.get_context("spawn")
    for b, run, requested in tqdm(cases, desc="store cases", unit="case"):
        with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
            row = pool.submit(_run_case, b, run, dim, n_scopes, n_queries, seed, str(root)).result()
        if run != requested:
            row["capped_from"] = requested
        results.append(row)
    if workdir is None:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "machine": machine(),
        "params": {
            "sizes": list(sizes),
            "dim": dim,
            "n_scopes": n_scopes,
            "n_queries": n_queries,
            "qdrant_local_cap": qdrant_local_cap,
            "seed": seed,
        },
        "results": results,
    }


def _pp(lat: dict[str, float]) -> str:
    return f"{lat['p50_ms']:.2f} / {lat['p99_ms']:.2f}"


def format_table(result: dict[str, Any]) -> str:
    """Markdown tables of a ``compare_stores`` result."""
    rows = result["results"]
    p = result["params"]
    lines = [
        f"{p['dim']} dims, {p['n_scopes']} scopes, top-5; latencies in ms as p50 / p99; "
        f"{result['machine']['cpus']} CPUs.",
        "",
        "| backend | clusters | upserts/s | 1-point upsert p50 | set_payload p50 | optimize s | flush s "
        "| reopen s | peak RSS MB | store RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        size = f"{r['size']:,}" + (f" (capped from {r['capped_from']:,})" if "capped_from" in r else "")
        reopen = f"{r['reopen_s']:.2f}" if "reopen_s" in r else "n/a"
        lines.append(
            f"| {r['backend']} | {size} | {r['upserts_per_s']:,.0f} | {r['upsert_one']['p50_ms']:.2f} "
            f"| {r['set_payload']['p50_ms']:.3f} | {r['optimize_s']:.2f} | {r['flush_s']:.2f} | {reopen} "
            f"| {r['peak_rss_mb']:.0f} | {r['store_rss_mb']:.0f} |"
        )
    lines += [
        "",
        "| backend | clusters | scoped, no optimize | unscoped, no optimize | scoped, optimized "
        "| unscoped, optimized | recall@5 | scoped, +10% after optimize | unscoped, +10% |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        b, a, g = r["before_optimize"], r["after_optimize"], r["after_10pct_more"]
        lines.append(
            f"| {r['backend']} | {r['size']:,} | {_pp(b['scoped'])} | {_pp(b['unscoped'])} "
            f"| {_pp(a['scoped'])} | {_pp(a['unscoped'])} | {a['recall_at_5']:.3f} "
            f"| {_pp(g['scoped'])} | {_pp(g['unscoped'])} |"
        )
    growing = [r for r in rows if r["scoped_p50_ms_while_growing"]]
    if growing:
        lines += ["", "Scoped top-5 p50 (ms) while points are being added, before any optimize:", ""]
        for r in growing:
            steps = ", ".join(
                f"{g['points']:,}: {g['scoped_p50_ms']:.2f}" for g in r["scoped_p50_ms_while_growing"]
            )
            lines.append(f"- {r['backend']} {r['size']:,}: {steps}")
    capped = [r for r in rows if "capped_from" in r]
    if capped:
        lines += [
            "",
            f"qdrant-client local mode capped at {p['qdrant_local_cap']:,} points (brute-force numpy; slow).",
        ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: run ``compare_stores`` and print the tables (optionally save JSON)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--backends", nargs="+", default=["edge", "qdrant-local"], choices=BACKENDS)
    ap.add_argument("--scopes", type=int, default=1000)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--qdrant-local-cap", type=int, default=10_000)
    ap.add_argument("--json", type=Path, default=None, help="write the raw result here")
    args = ap.parse_args(argv)
    result = compare_stores(
        args.sizes,
        args.dim,
        args.backends,
        n_scopes=args.scopes,
        n_queries=args.queries,
        qdrant_local_cap=args.qdrant_local_cap,
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    print(format_table(result))


if __name__ == "__main__":
    main()
