"""Benchmark of the entity matcher on a large synthetic dictionary.

Builds a dictionary of ``n_entries`` synthetic values (Chinese names/titles and Latin
phrases), templates ``n_queries`` synthetic queries with 0-2 entities each, and compares
with a naive baseline (``value in query`` for every value) over a 1k-entry subset,
measured in the same run. Not a test: numbers depend on the machine.

    $ python -m odia.bench.templater_bench              # 100k entries, 10k queries
    $ python -m odia.bench.templater_bench 20000 2000

    >>> from odia.bench.templater_bench import bench_templater
    >>> r = bench_templater(n_entries=2_000, n_queries=200, verbose=False)
    >>> r["n_entries"] >= 1_000 and r["speedup_vs_naive_same_size"] > 1
    True
"""

from __future__ import annotations

import gc
import os
import random
import sys
import time
from collections.abc import Callable
from typing import Any

from odia_stream.templates.dictionary import EntityDictionary
from odia_stream.templates.templater import QueryTemplater
from odia_stream.templates.text import normalize_text

__all__ = ["bench_templater", "synthetic_entries", "synthetic_queries"]

_CJK = (
    "周杰伦林俊杰薛之谦王菲陈奕迅邓紫棋张学友刘德华五月天李荣浩毛不易华晨宇"
    "稻香七里香青花瓷演员成全夜曲晴天告白气球江南后来小幸运海阔天空"
)
_SYL = [
    "ka",
    "ri",
    "mo",
    "ten",
    "lu",
    "sha",
    "vor",
    "nel",
    "dra",
    "pi",
    "quon",
    "zel",
    "tor",
    "ami",
    "bex",
    "cal",
]
_TYPES = ["singer", "song", "album", "playlist", "genre", "city", "contact", "app"]
_ZH_FRAMES = ["播放{}的{}", "我想听{}", "帮我搜一下{}的歌", "把{}加到{}", "{}有什么新歌", "打开{}"]
_EN_FRAMES = [
    "play {}'s {}",
    "i want to hear {}",
    "search songs by {}",
    "add {} to {}",
    "what's new from {}",
    "open {}",
]
_FILLER = ["今天天气怎么样", "设置一个明天早上七点的闹钟", "what time is it", "turn the volume down a bit"]


def _latin_word(rng: random.Random) -> str:
    return "".join(rng.choice(_SYL) for _ in range(rng.randint(2, 3)))


def synthetic_entries(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` distinct ``(type, value)`` pairs: half Chinese (2-5 chars), half Latin (1-3 words)."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    while len(out) < n:
        if rng.random() < 0.5:
            value = "".join(rng.choice(_CJK) for _ in range(rng.randint(2, 5)))
        else:
            value = " ".join(_latin_word(rng).capitalize() for _ in range(rng.randint(1, 3)))
        key = normalize_text(value)
        if key in seen:
            continue
        seen.add(key)
        out.append((rng.choice(_TYPES), value))
    return out


def synthetic_queries(entries: list[tuple[str, str]], n: int, seed: int = 1) -> list[str]:
    """``n`` queries from fixed frames filled with dictionary values (some without any)."""
    rng = random.Random(seed)
    zh = [v for _, v in entries if not v.isascii()]
    en = [v for _, v in entries if v.isascii()]
    out: list[str] = []
    for _ in range(n):
        r = rng.random()
        if r < 0.1:
            out.append(rng.choice(_FILLER))
            continue
        frames, pool = (_ZH_FRAMES, zh) if r < 0.55 else (_EN_FRAMES, en)
        frame = rng.choice(frames)
        out.append(frame.format(*(rng.choice(pool) for _ in range(frame.count("{}")))))
    return out


def _rss_bytes() -> int | None:
    """Resident set size (Linux ``/proc``), or None elsewhere."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _best_of(fn: Callable[[], object], repeats: int) -> float:
    """Fastest of ``repeats`` timed calls (the machine may be shared)."""
    best = float("inf")
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _naive_match(values: list[tuple[str, str]], queries: list[str]) -> list[tuple[str, str]]:
    """Baseline: lowercase both sides, test every value with ``in``; no boundaries, no overlaps."""
    lowered = [(t, v.lower()) for t, v in values]
    hits: list[tuple[str, str]] = []
    for q in queries:
        ql = q.lower()
        for t, v in lowered:
            if v in ql:
                hits.append((t, v))
    return hits


def bench_templater(
    n_entries: int = 100_000, n_queries: int = 10_000, *, repeats: int = 3, verbose: bool = True
) -> dict[str, Any]:
    """Measure build time, throughput and memory; return the figures (and print them if ``verbose``).

    Throughputs are the best of ``repeats`` passes; ``rss_growth_mb`` is the rough growth
    of the process's resident memory while the dictionary and automaton were built.
    """
    entries = synthetic_entries(n_entries)
    queries = synthetic_queries(entries, n_queries)

    gc.collect()
    rss0 = _rss_bytes()
    t0 = time.perf_counter()
    d = EntityDictionary()
    for etype, value in entries:
        d.add(etype, value, source="file")
    t1 = time.perf_counter()
    templater = QueryTemplater(d)
    templater.matcher.rebuild()
    t2 = time.perf_counter()
    rss1 = _rss_bytes()
    n_dict = len(d)

    n_slots = sum(len(templater.template(q).slots) for q in queries)
    match_s = _best_of(lambda: [templater.template(q) for q in queries], repeats)

    # incremental: one learned value, then one query (delta automaton path)
    t5 = time.perf_counter()
    reps = 50
    for i in range(reps):
        d.add("song", f"新歌{i}号")
        templater.template("播放新歌3号")
    incr_ms = (time.perf_counter() - t5) / reps * 1e3

    # naive baseline on a 1k subset, and the automaton on the same subset (same queries)
    subset = entries[:1_000]
    n_naive_q = min(len(queries), 2_000)
    naive_s = _best_of(lambda: _naive_match(subset, queries[:n_naive_q]), repeats)
    small = EntityDictionary()
    for etype, value in subset:
        small.add(etype, value)
    small_tpl = QueryTemplater(small)
    small_tpl.matcher.rebuild()
    small_s = _best_of(lambda: [small_tpl.template(q) for q in queries[:n_naive_q]], repeats)

    qps = n_queries / match_s
    naive_qps_1k = n_naive_q / naive_s
    stats = templater.matcher.stats()
    result: dict[str, Any] = {
        "n_entries": n_dict,
        "n_queries": n_queries,
        "dict_build_s": round(t1 - t0, 3),
        "automaton_build_s": round(t2 - t1, 3),
        "queries_per_s": round(qps),
        "us_per_query": round(match_s / n_queries * 1e6, 1),
        "slots_found": n_slots,
        "learn_then_match_ms": round(incr_ms, 3),
        "automaton_mb": round(stats["automaton_bytes"] / 2**20, 1),
        "rss_growth_mb": None if rss0 is None or rss1 is None else round((rss1 - rss0) / 2**20, 1),
        "naive_1k_queries_per_s": round(naive_qps_1k),
        "automaton_1k_queries_per_s": round(n_naive_q / small_s),
        "speedup_vs_naive_same_size": round(naive_s / small_s, 1),
        # the naive loop is linear in the dictionary size: extrapolate it to n_entries
        "speedup_vs_naive_extrapolated": round(qps / (naive_qps_1k * len(subset) / n_dict), 1),
    }
    if verbose:
        width = max(map(len, result))
        for k, v in result.items():
            print(f"{k:<{width}}  {v}")
    return result


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    bench_templater(*args)
