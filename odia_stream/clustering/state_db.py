"""Durable learner state in SQLite: groups, clusters, kept examples, seen event ids, applied
offsets, learned entities and counters. One transaction per micro-batch, so a crash leaves
either the whole batch applied or none of it."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np

from odia_stream.clustering.audit import PartitionAudit
from odia_stream.clustering.records import Cluster, QueryGroup, StoredExample
from odia_stream.templates.programs import Observation, TemplateEvidence

#: The meta key of the learner's store version (its first name, kept so existing state files load).
STORE_VERSION_KEY = "state_version"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS offsets (topic TEXT, partition INTEGER, applied INTEGER, PRIMARY KEY (topic, partition));
CREATE TABLE IF NOT EXISTS seen (event_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS clusters (
    cluster_id INTEGER PRIMARY KEY, scope TEXT, app TEXT, weighted_sum BLOB, weight REAL, size INTEGER,
    function_counts TEXT, group_ids TEXT, version INTEGER, label TEXT, dominant TEXT, share REAL, bound REAL,
    changed_at INTEGER);
CREATE TABLE IF NOT EXISTS groups (
    group_id INTEGER PRIMARY KEY, scope TEXT, app TEXT, norm TEXT, query TEXT, cluster_id INTEGER,
    embedding BLOB, count INTEGER, function_counts TEXT, last_seen TEXT, alias_of INTEGER, slots TEXT);
CREATE TABLE IF NOT EXISTS examples (
    group_id INTEGER, event_id TEXT, function TEXT, ts TEXT, completeness INTEGER, query TEXT,
    history TEXT, call TEXT, tools_key TEXT, PRIMARY KEY (group_id, event_id));
CREATE TABLE IF NOT EXISTS tools (tools_key TEXT PRIMARY KEY, tools TEXT);
CREATE TABLE IF NOT EXISTS entities (app TEXT, type TEXT, value TEXT, count INTEGER, PRIMARY KEY (app, type, value));
CREATE TABLE IF NOT EXISTS audit (
    topic TEXT, partition INTEGER, outcome TEXT, count INTEGER, PRIMARY KEY (topic, partition, outcome));
CREATE TABLE IF NOT EXISTS audit_start (topic TEXT, partition INTEGER, first_offset INTEGER, PRIMARY KEY (topic, partition));
CREATE TABLE IF NOT EXISTS dead_lettered (
    topic TEXT, partition INTEGER, "offset" INTEGER, sha256 TEXT, reason TEXT, PRIMARY KEY (topic, partition, "offset", sha256));
CREATE TABLE IF NOT EXISTS template_calls (
    app TEXT, scope TEXT, template TEXT, function TEXT, observation TEXT, count INTEGER,
    PRIMARY KEY (app, scope, template, function, observation));
"""

#: ``observation`` of a ``template_calls`` row counting answers without an observation (no call).
NO_OBSERVATION = ""
#: ``observation`` of a ``template_calls`` row counting calls over the template's observation cap.
OVERFLOW = "*"


def _vec(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32).copy()


class LearnerStateDB:
    """SQLite file holding everything the learner must remember across restarts."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        if read_only:
            # WAL readers see the last committed transaction and never block the writer.
            self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(_SCHEMA)

    # -- meta ---------------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        """A stored meta value."""
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        """Store a meta value (inside the current transaction if one is open)."""
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # -- loading ------------------------------------------------------------------------------
    def load_clusters(self) -> Iterator[Cluster]:
        """Every stored cluster."""
        for r in self.conn.execute("SELECT * FROM clusters"):
            yield Cluster(
                cluster_id=r[0], scope=r[1], app=r[2], weighted_sum=_vec(r[3]), weight=r[4], size=r[5],
                function_counts=Counter(json.loads(r[6])), group_ids=json.loads(r[7]), version=r[8],
                label=r[9], dominant_function=r[10], dominant_share=r[11], share_lower_bound=r[12], changed_at=r[13],
            )

    def load_groups(self) -> Iterator[QueryGroup]:
        """Every stored group (aliases included)."""
        for r in self.conn.execute("SELECT * FROM groups"):
            yield QueryGroup(
                group_id=r[0], scope=r[1], app=r[2], norm=r[3], query=r[4], cluster_id=r[5],
                embedding=_vec(r[6]), count=r[7], function_counts=Counter(json.loads(r[8])),
                last_seen=datetime.fromisoformat(r[9]) if r[9] else None, alias_of=r[10],
                slots=tuple(tuple(p) for p in json.loads(r[11] or "[]")),  # type: ignore[misc]
            )

    def applied_offsets(self) -> dict[tuple[str, int], int]:
        """Highest offset applied per (topic, partition)."""
        return {(t, p): o for t, p, o in self.conn.execute("SELECT topic, partition, applied FROM offsets")}

    def audit(self) -> list[PartitionAudit]:
        """The ingest audit of every partition (:mod:`odia_stream.clustering.audit`), by topic and partition."""
        counts: dict[tuple[str, int], Counter[str]] = {}
        for t, p, outcome, n in self.conn.execute("SELECT topic, partition, outcome, count FROM audit"):
            counts.setdefault((t, p), Counter())[outcome] = n
        starts = {(t, p): o for t, p, o in self.conn.execute("SELECT topic, partition, first_offset FROM audit_start")}
        applied = self.applied_offsets()
        return [
            PartitionAudit(t, p, starts.get((t, p), 0), applied.get((t, p), -1), counts[(t, p)])
            for t, p in sorted(counts)
        ]

    def fingerprint(self) -> str:
        """sha256 of the learned clusters (ids, sizes, function counts, labels) and query groups:
        equal for states learned from the same records, whatever faults came between."""
        digest = hashlib.sha256()
        for row in self.conn.execute(
            "SELECT cluster_id, size, function_counts, label FROM clusters ORDER BY cluster_id"
        ):
            digest.update(json.dumps([row[0], row[1], json.loads(row[2]), row[3]], sort_keys=True).encode())
        for row in self.conn.execute("SELECT group_id, cluster_id, count, alias_of FROM groups ORDER BY group_id"):
            digest.update(json.dumps(list(row)).encode())
        return digest.hexdigest()

    def was_dead_lettered(self, topic: str, partition: int, offset: int, sha256: str) -> bool:
        """Whether this value (by sha256) at this position was dead-lettered before."""
        row = self.conn.execute(
            'SELECT 1 FROM dead_lettered WHERE topic=? AND partition=? AND "offset"=? AND sha256=?',
            (topic, partition, offset, sha256),
        ).fetchone()
        return row is not None

    def seen_ids(self, event_ids: Sequence[str]) -> set[str]:
        """Which of ``event_ids`` were applied before."""
        found: set[str] = set()
        for i in range(0, len(event_ids), 500):
            chunk = list(event_ids[i : i + 500])
            marks = ",".join("?" * len(chunk))
            found.update(r[0] for r in self.conn.execute(f"SELECT event_id FROM seen WHERE event_id IN ({marks})", chunk))
        return found

    def entities(self) -> Iterator[tuple[str, str, str, int]]:
        """Learned entity values per app, with their counts."""
        yield from self.conn.execute("SELECT app, type, value, count FROM entities ORDER BY app, type, value")

    def template_evidence(self, max_observations: int) -> dict[tuple[str, str, str], TemplateEvidence]:
        """The counted answers of every template (see :mod:`odia_stream.templates.programs`)."""
        out: dict[tuple[str, str, str], TemplateEvidence] = {}
        for app, scope, template, function, observation, count in self.conn.execute(
            "SELECT app, scope, template, function, observation, count FROM template_calls "
            "ORDER BY app, scope, template, function, observation"
        ):
            ev = out.setdefault((app, scope, template), TemplateEvidence(max_observations))
            if observation == NO_OBSERVATION:
                ev.add_no_call(function, count)
            elif observation == OVERFLOW:
                ev.calls[function] += count
                ev.overflow[function] += count
            else:
                ev.calls[function] += count
                ev.observations.setdefault(function, Counter())[Observation.from_json(function, observation)] += count
        return out

    def examples_of(self, group_ids: Iterable[int]) -> list[StoredExample]:
        """Kept examples of the given groups."""
        ids = list(group_ids)
        out: list[StoredExample] = []
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for r in self.conn.execute(
                f"SELECT group_id, event_id, function, ts, completeness, query, history, call, tools_key "
                f"FROM examples WHERE group_id IN ({marks})",
                chunk,
            ):
                out.append(StoredExample(r[1], r[0], r[2], datetime.fromisoformat(r[3]), r[4], r[5], r[6], r[7], r[8]))
        return out

    def tools_json(self, tools_key: str) -> str | None:
        """The offered-tools JSON stored under ``tools_key``."""
        row = self.conn.execute("SELECT tools FROM tools WHERE tools_key=?", (tools_key,)).fetchone()
        return row[0] if row else None

    # -- writing (call between begin() and commit()) -------------------------------------------
    def begin(self) -> None:
        """Open the batch transaction."""
        self.conn.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        """Make the batch durable."""
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        """Forget the batch."""
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def save_clusters(self, clusters: Iterable[Cluster]) -> None:
        """Insert or replace clusters."""
        self.conn.executemany(
            "INSERT OR REPLACE INTO clusters VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (c.cluster_id, c.scope, c.app, c.weighted_sum.astype(np.float32).tobytes(), c.weight, c.size,
                 json.dumps(dict(c.function_counts), sort_keys=True), json.dumps(c.group_ids), c.version,
                 c.label, c.dominant_function, c.dominant_share, c.share_lower_bound, c.changed_at)
                for c in clusters
            ],
        )

    def save_groups(self, groups: Iterable[QueryGroup]) -> None:
        """Insert or replace groups."""
        self.conn.executemany(
            "INSERT OR REPLACE INTO groups VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (g.group_id, g.scope, g.app, g.norm, g.query, g.cluster_id, g.embedding.astype(np.float32).tobytes(),
                 g.count, json.dumps(dict(g.function_counts), sort_keys=True),
                 g.last_seen.isoformat() if g.last_seen else None, g.alias_of, json.dumps(g.slots, ensure_ascii=False))
                for g in groups
            ],
        )

    def replace_examples(self, group_ids: Iterable[int], examples: Iterable[StoredExample]) -> None:
        """Make ``examples`` the complete kept set of ``group_ids``."""
        self.conn.executemany("DELETE FROM examples WHERE group_id=?", [(g,) for g in group_ids])
        self.conn.executemany(
            "INSERT OR REPLACE INTO examples VALUES (?,?,?,?,?,?,?,?,?)",
            [(e.group_id, e.event_id, e.function, e.timestamp.isoformat(), e.completeness, e.query,
              e.history_json, e.call_json, e.tools_key) for e in examples],
        )

    def save_tools(self, tools: dict[str, str]) -> None:
        """Remember offered-tool sets by key."""
        self.conn.executemany("INSERT OR IGNORE INTO tools VALUES (?, ?)", list(tools.items()))

    def mark_seen(self, event_ids: Iterable[str]) -> None:
        """Record applied event ids."""
        self.conn.executemany("INSERT OR IGNORE INTO seen VALUES (?)", [(e,) for e in event_ids])

    def add_audit(
        self, counts: dict[tuple[str, int], Counter[str]], starts: dict[tuple[str, int], int],
        dead_lettered: Iterable[tuple[str, int, int, str, str]],
    ) -> None:
        """Add a batch's audit counts per partition, the first offset of partitions audited for the
        first time, and the dead-lettered inputs ``(topic, partition, offset, sha256, reason)``."""
        self.conn.executemany(
            "INSERT INTO audit VALUES (?,?,?,?) ON CONFLICT(topic, partition, outcome) DO UPDATE SET count=count+excluded.count",
            [(t, p, outcome, n) for (t, p), c in counts.items() for outcome, n in sorted(c.items()) if n],
        )
        self.conn.executemany("INSERT OR IGNORE INTO audit_start VALUES (?,?,?)", [(t, p, o) for (t, p), o in starts.items()])
        self.conn.executemany("INSERT OR IGNORE INTO dead_lettered VALUES (?,?,?,?,?)", list(dead_lettered))

    def set_applied(self, offsets: dict[tuple[str, int], int]) -> None:
        """Record the highest applied offset per partition."""
        self.conn.executemany(
            "INSERT INTO offsets VALUES (?,?,?) ON CONFLICT(topic, partition) DO UPDATE SET applied=MAX(applied, excluded.applied)",
            [(t, p, o) for (t, p), o in offsets.items()],
        )

    def add_entities(self, triples: Iterable[tuple[str, str, str]]) -> None:
        """Count learned (app, type, value) entity values."""
        self.conn.executemany(
            "INSERT INTO entities VALUES (?,?,?,1) ON CONFLICT(app, type, value) DO UPDATE SET count=count+1",
            list(triples),
        )

    def save_template_evidence(self, evidence: dict[tuple[str, str, str], TemplateEvidence]) -> None:
        """Make ``evidence`` the stored counts of its templates."""
        self.conn.executemany(
            "DELETE FROM template_calls WHERE app=? AND scope=? AND template=?", list(evidence)
        )
        rows: list[tuple[str, str, str, str, str, int]] = []
        for (app, scope, template), ev in evidence.items():
            for function, seen in ev.observations.items():
                rows.extend((app, scope, template, function, obs.to_json(), n) for obs, n in seen.items())
            for function, n in ev.overflow.items():
                rows.append((app, scope, template, function, OVERFLOW, n))
            for function, n in ev.calls.items():
                rest = n - sum(ev.observations.get(function, Counter()).values()) - ev.overflow[function]
                if rest:
                    rows.append((app, scope, template, function, NO_OBSERVATION, rest))
        self.conn.executemany("INSERT INTO template_calls VALUES (?,?,?,?,?,?)", rows)

    def counts(self) -> dict[str, int]:
        """Row counts per table (for summaries)."""
        return {
            t: self.conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("clusters", "groups", "examples", "seen", "entities")
        }

    def close(self) -> None:
        """Close the file."""
        self.conn.close()
