"""Router snapshots: versioned, immutable artefacts the serving process loads.

A snapshot holds everything a router needs, written from the learner's state: the clusters
(representative vectors, scope, label, dominant function, support), the known queries answered
with one function, the simple NER templates, the templates' valid argument programs (the template
tier), the tool catalog, the stage-2 classifier, the calibrated thresholds, the entity dictionaries the
learner templated with, the embedder id, the learner state version (the cluster-store snapshot)
and the adapter version it was calibrated for.

Layout of ``<root>/<version>/``::

    content.json          everything but arrays and dictionaries (canonical JSON)
    vectors.npy           cluster representatives, float32 (n, dim)
    classifier_w.npy      classifier weights, float32 (C, D)   (absent without a classifier)
    classifier_b.npy      classifier bias, float32 (C,)
    entities/<i>.json     entity dictionary of the i-th app of content.json
    manifest.json         version, creation time, build report, sha256 of every file (written last)

The version is ``r`` + the first 16 hex digits of a sha256 over the content files, so equal
content gives the equal version and nothing else does. A snapshot is written to a temporary
folder beside the root and renamed into place (atomic); loading verifies every file's sha256.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from odia_stream.keys import cluster_key, program_key, query_key, template_cluster_key
from odia_stream.routing.calibration import Threshold
from odia_stream.routing.classifier import LinearRouteModel
from odia_stream.routing.safety import ToolCatalog
from odia_stream.templates import EntityDictionary

FORMAT = "odia-router-snapshot"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
#: Stage names of the calibrated thresholds.
STAGES = ("query", "match", "template", "classifier")


class SnapshotError(RuntimeError):
    """A snapshot is missing, corrupt or does not fit what was asked."""


@dataclass(frozen=True, eq=False)
class ClusterTable:
    """The clusters a router knows, one row each. ``labels`` are routing labels: ``simple`` only
    where the small model may answer the dominant function (within the adapter's functions)."""

    ids: np.ndarray
    scopes: tuple[str, ...]
    apps: tuple[str, ...]
    labels: tuple[str, ...]
    functions: tuple[str | None, ...]
    dominant: np.ndarray
    sizes: np.ndarray
    vectors: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.ids)
        if not (len(self.scopes) == len(self.apps) == len(self.labels) == len(self.functions) == n):
            raise ValueError("cluster table columns differ in length")
        if len(self.dominant) != n or len(self.sizes) != n or self.vectors.ndim != 2 or len(self.vectors) != n:
            raise ValueError("cluster table arrays do not fit its rows")

    def __len__(self) -> int:
        return len(self.ids)

    def key(self, row: int) -> str:
        """The cluster key of a row (``c<hex>``, as on the cluster-state topic)."""
        return cluster_key(int(self.ids[row]))


@dataclass(frozen=True)
class TemplateFunction:
    """An NER template of one app and scope, and the function its queries are answered with."""

    app: str
    scope: str
    template: str
    function: str
    #: The entry's key from ``(app, scope, template)``: each kind of entry has its own.
    key_of: ClassVar[Callable[[str, str, str], str]]

    @property
    def key(self) -> str:
        """Stable key of the entry, the key of its error budget (``t<hex>``: a template cluster,
        ``p<hex>``: a program)."""
        return self.key_of(self.app, self.scope, self.template)


@dataclass(frozen=True)
class TemplateEntry(TemplateFunction):
    """A simple template cluster: queries of one scope sharing an NER template, one function."""

    key_of = staticmethod(template_cluster_key)
    lower_bound: float
    queries: int
    size: int
    dominant: int


@dataclass(frozen=True)
class ProgramEntry(TemplateFunction):
    """A template's valid argument program (:mod:`odia_stream.templates.programs`): the call of
    ``function`` assembled from the query's slots, with the evidence it was found valid on."""

    key_of = staticmethod(program_key)
    #: Argument name → source text (``slot:song``, ``const:"app"``...), sorted by name.
    sources: tuple[tuple[str, str], ...]
    support: int
    agreement: int
    lower_bound: float
    #: Valid by its family's pooled evidence (below), not its own; its error budget starts from it.
    pooled: bool = False
    family_support: int = 0
    family_agreement: int = 0

    @property
    def prior(self) -> tuple[int, int]:
        """``(agreement, support)`` its error budget starts from: its family's when it is pooled."""
        return (self.family_agreement, self.family_support) if self.pooled else (self.agreement, self.support)


@dataclass(frozen=True)
class QueryEntry:
    """A known query (a query group of the learner) that the large model answered with one
    function, consistently enough to pass the query-match threshold."""

    scope: str
    #: The normalised query (:func:`~odia_stream.normalize.normalize_query`).
    norm: str
    function: str
    #: Wilson lower bound of the share of its records calling ``function``: its score.
    lower_bound: float
    size: int
    dominant: int

    @property
    def key(self) -> str:
        """``q<hex>``: the key of its error budget."""
        return query_key(self.scope, self.norm)


@dataclass(frozen=True, eq=False)
class RouterSnapshot:
    """Everything a :class:`~odia_stream.routing.Router` is built from (see the module doc)."""

    embedder_id: str
    dim: int
    scope_mode: str
    store_version: int
    adapter_version: str | None
    adapter_functions: tuple[str, ...] | None
    target_precision: float
    clusters: ClusterTable
    templates: tuple[TemplateEntry, ...]
    catalog: ToolCatalog
    classifier: LinearRouteModel | None
    classifier_kind: str | None
    thresholds: Mapping[str, Threshold]
    dictionaries: Mapping[str, EntityDictionary]
    #: Valid argument programs of the template tier.
    programs: tuple[ProgramEntry, ...] = ()
    #: Known queries answered with one function (the query match).
    queries: tuple[QueryEntry, ...] = ()
    #: The functions the paired adapter is trusted with (its per-function held-out accuracy reached
    #: ``trainer.function_accuracy_target``); the small model is sent no other. ``None``: any.
    model_functions: tuple[str, ...] | None = None
    #: Build figures (counts, calibration, seconds): kept in the manifest, not in the version hash.
    report: Mapping[str, Any] = field(default_factory=dict)
    version: str = ""
    created_at: str = ""

    def __post_init__(self) -> None:
        if self.clusters.vectors.shape[1] != self.dim:
            raise ValueError(f"cluster vectors have dim {self.clusters.vectors.shape[1]}, snapshot says {self.dim}")
        missing = [s for s in STAGES if s not in self.thresholds]
        if missing:
            raise ValueError(f"thresholds missing for stages {missing}")


@dataclass(frozen=True)
class SnapshotInfo:
    """What the manifest says about a snapshot on disk."""

    version: str
    path: Path
    created_at: str
    adapter_version: str | None
    store_version: int
    embedder_id: str


# -- JSON helpers ------------------------------------------------------------------------------
def _threshold_json(t: Threshold) -> dict[str, Any]:
    def num(x: float) -> float | None:
        return None if not math.isfinite(x) else round(float(x), 9)

    return {
        "value": num(t.value), "precision": num(t.precision), "lower_bound": num(t.lower_bound),
        "routed": num(t.routed), "correct": num(t.correct), "items": t.items, "total": num(t.total),
        "effective_n": num(t.effective_n), "z": num(t.z),
    }


def _threshold_from(d: Mapping[str, Any]) -> Threshold:
    def val(x: float | None, default: float) -> float:
        return default if x is None else float(x)

    return Threshold(
        val(d["value"], math.inf), val(d["precision"], math.nan), val(d["lower_bound"], 0.0),
        val(d["routed"], 0.0), val(d["correct"], 0.0), int(d["items"]), val(d["total"], 0.0),
        val(d.get("effective_n"), math.nan), val(d.get("z"), math.nan),  # absent in older snapshots
    )


def as_written(t: Threshold) -> Threshold:
    """``t`` with its figures as a snapshot writes them (9 decimals): a router built in memory
    then compares bounds with thresholds exactly as one loaded from disk."""
    return _threshold_from(_threshold_json(t))


def _dump(data: Any) -> bytes:
    return (json.dumps(data, sort_keys=True, ensure_ascii=False, indent=1, allow_nan=False) + "\n").encode("utf-8")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _content(s: RouterSnapshot, apps: list[str]) -> dict[str, Any]:
    c = s.clusters
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "embedder_id": s.embedder_id,
        "dim": s.dim,
        "scope_mode": s.scope_mode,
        "store_version": s.store_version,
        "adapter_version": s.adapter_version,
        "adapter_functions": list(s.adapter_functions) if s.adapter_functions is not None else None,
        "model_functions": list(s.model_functions) if s.model_functions is not None else None,
        "target_precision": s.target_precision,
        "clusters": {
            "ids": [int(x) for x in c.ids], "scopes": list(c.scopes), "apps": list(c.apps), "labels": list(c.labels),
            "functions": list(c.functions), "dominant": [int(x) for x in c.dominant], "sizes": [int(x) for x in c.sizes],
        },
        "templates": [
            {"app": t.app, "scope": t.scope, "template": t.template, "function": t.function,
             "lower_bound": round(t.lower_bound, 9), "queries": t.queries, "size": t.size, "dominant": t.dominant}
            for t in s.templates
        ],
        "programs": [
            {"app": p.app, "scope": p.scope, "template": p.template, "function": p.function,
             "sources": dict(p.sources), "support": p.support, "agreement": p.agreement,
             "lower_bound": round(p.lower_bound, 9), "pooled": p.pooled, "family_support": p.family_support,
             "family_agreement": p.family_agreement}
            for p in s.programs
        ],
        "queries": [
            {"scope": q.scope, "norm": q.norm, "function": q.function, "lower_bound": round(q.lower_bound, 9),
             "size": q.size, "dominant": q.dominant}
            for q in s.queries
        ],
        "catalog": s.catalog.to_json(),
        "classifier": None if s.classifier is None else {
            "kind": s.classifier_kind, "classes": list(s.classifier.classes), "link": s.classifier.link,
        },
        "thresholds": {k: _threshold_json(s.thresholds[k]) for k in STAGES},
        "entity_apps": apps,
    }


# -- writing -----------------------------------------------------------------------------------
def write_snapshot(snapshot: RouterSnapshot, root: Path) -> SnapshotInfo:
    """Write ``snapshot`` under ``root/<version>`` atomically; an existing equal version is kept."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".router-", suffix=".tmp", dir=root))
    try:
        apps = sorted(snapshot.dictionaries)
        (tmp / "content.json").write_bytes(_dump(_content(snapshot, apps)))
        np.save(tmp / "vectors.npy", np.ascontiguousarray(snapshot.clusters.vectors, dtype=np.float32))
        if snapshot.classifier is not None:
            np.save(tmp / "classifier_w.npy", snapshot.classifier.weights)
            np.save(tmp / "classifier_b.npy", snapshot.classifier.bias)
        (tmp / "entities").mkdir()
        for i, app in enumerate(apps):
            snapshot.dictionaries[app].save(tmp / "entities" / f"{i}.json")
        files = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
        hashes = {name: _sha256(tmp / name) for name in files}
        digest = hashlib.sha256("".join(f"{n}\x1f{h}\n" for n, h in hashes.items()).encode()).hexdigest()
        version = "r" + digest[:16]
        created = datetime.now(UTC).isoformat()
        manifest = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "version": version, "created_at": created,
            "adapter_version": snapshot.adapter_version, "store_version": snapshot.store_version,
            "embedder_id": snapshot.embedder_id, "files": hashes, "report": snapshot.report,
        }
        (tmp / MANIFEST).write_bytes(_dump(json.loads(json.dumps(manifest, default=str))))
        for p in [*tmp.rglob("*"), tmp]:
            if p.is_file():
                with open(p, "rb") as fh:
                    os.fsync(fh.fileno())
        final = root / version
        if not (final / MANIFEST).is_file():
            if final.exists():
                shutil.rmtree(final)
            try:
                os.rename(tmp, final)
            except OSError:
                if not (final / MANIFEST).is_file():
                    raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return read_info(root / version)


# -- reading -----------------------------------------------------------------------------------
def read_info(path: Path) -> SnapshotInfo:
    """The manifest of the snapshot at ``path``."""
    try:
        m = json.loads((Path(path) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SnapshotError(f"no readable router snapshot at {path}: {exc}") from exc
    if m.get("format") != FORMAT:
        raise SnapshotError(f"{path} is not a router snapshot (format {m.get('format')!r})")
    return SnapshotInfo(m["version"], Path(path), m["created_at"], m["adapter_version"], m["store_version"], m["embedder_id"])


def list_snapshots(root: Path) -> list[SnapshotInfo]:
    """Every complete snapshot under ``root``, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [read_info(p) for p in root.iterdir() if p.is_dir() and (p / MANIFEST).is_file()]
    return sorted(found, key=lambda i: (i.created_at, i.version))


def find_snapshot(root: Path, *, version: str | None = None, adapter_version: str | None = None) -> SnapshotInfo:
    """The snapshot ``version``, else the newest one calibrated for ``adapter_version`` (any when ``None``)."""
    if version is not None:
        info = read_info(Path(root) / version)
        if adapter_version is not None and info.adapter_version != adapter_version:
            raise SnapshotError(
                f"router {version} was calibrated for adapter {info.adapter_version!r}, not {adapter_version!r}"
            )
        return info
    matching = [i for i in list_snapshots(root) if adapter_version is None or i.adapter_version == adapter_version]
    if not matching:
        what = f" for adapter {adapter_version!r}" if adapter_version is not None else ""
        raise SnapshotError(f"no router snapshot{what} under {root}")
    return matching[-1]


def load_snapshot(path: Path) -> RouterSnapshot:
    """Read and verify the snapshot at ``path`` (every file's sha256 against the manifest)."""
    path = Path(path)
    info = read_info(path)
    manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    for name, digest in manifest["files"].items():
        if not (path / name).is_file() or _sha256(path / name) != digest:
            raise SnapshotError(f"router snapshot {info.version}: {name} is missing or does not match its sha256")
    c = json.loads((path / "content.json").read_text(encoding="utf-8"))
    if c.get("format_version") != FORMAT_VERSION:
        raise SnapshotError(f"router snapshot format {c.get('format_version')} is not {FORMAT_VERSION}")
    cl = c["clusters"]
    vectors = np.load(path / "vectors.npy", allow_pickle=False)
    table = ClusterTable(
        ids=np.asarray(cl["ids"], dtype=np.int64), scopes=tuple(cl["scopes"]), apps=tuple(cl["apps"]),
        labels=tuple(cl["labels"]), functions=tuple(cl["functions"]),
        dominant=np.asarray(cl["dominant"], dtype=np.int64), sizes=np.asarray(cl["sizes"], dtype=np.int64),
        vectors=vectors.reshape(len(cl["ids"]), int(c["dim"])),
    )
    classifier = None
    if c["classifier"] is not None:
        classifier = LinearRouteModel(
            tuple(c["classifier"]["classes"]),
            np.load(path / "classifier_w.npy", allow_pickle=False),
            np.load(path / "classifier_b.npy", allow_pickle=False),
            c["classifier"]["link"],
        )
    dictionaries = {app: EntityDictionary.from_file(path / "entities" / f"{i}.json") for i, app in enumerate(c["entity_apps"])}
    return RouterSnapshot(
        embedder_id=c["embedder_id"], dim=int(c["dim"]), scope_mode=c["scope_mode"], store_version=int(c["store_version"]),
        adapter_version=c["adapter_version"],
        adapter_functions=tuple(c["adapter_functions"]) if c["adapter_functions"] is not None else None,
        target_precision=float(c["target_precision"]), clusters=table,
        templates=tuple(TemplateEntry(**t) for t in c["templates"]), catalog=ToolCatalog.from_json(c["catalog"]),
        classifier=classifier, classifier_kind=c["classifier"]["kind"] if c["classifier"] else None,
        # Snapshots written before the query match have no threshold for it: it never routes.
        thresholds={"query": Threshold.disabled()} | {k: _threshold_from(v) for k, v in c["thresholds"].items()},
        dictionaries=dictionaries,
        programs=tuple(
            ProgramEntry(p["app"], p["scope"], p["template"], p["function"], tuple(sorted(p["sources"].items())),
                         int(p["support"]), int(p["agreement"]), float(p["lower_bound"]),
                         # Snapshots written before program families have no family fields.
                         bool(p.get("pooled", False)), int(p.get("family_support", 0)),
                         int(p.get("family_agreement", 0)))
            for p in c.get("programs", [])  # snapshots written before the template tier have none
        ),
        queries=tuple(QueryEntry(**q) for q in c.get("queries", [])),  # none before the query match
        # Snapshots written before per-function trust have none: the model is sent any function.
        model_functions=tuple(c["model_functions"]) if c.get("model_functions") is not None else None,
        report=manifest.get("report", {}), version=info.version, created_at=info.created_at,
    )
