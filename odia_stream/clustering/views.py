"""Read views over the learner's state, shared by the live learner and read-only snapshots.

The ingest worker owns the learner (its SQLite file and vector store). Other processes (the
trainer building a training set, the router builder) open a :class:`LearnerView`: a
consistent read-only snapshot of the same state, loaded from SQLite in one read transaction,
without touching the vector store.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from odia_stream.clustering.records import Cluster, QueryGroup
from odia_stream.clustering.state_db import STORE_VERSION_KEY, LearnerStateDB
from odia_stream.keys import TemplatedQuery, TemplateKey, cluster_key, template_text
from odia_stream.labels import WilsonLabeler
from odia_stream.settings import ClusteringSettings, TemplateTierSettings
from odia_stream.templates import EntityDictionary, QueryTemplater
from odia_stream.templates.programs import Program, ProgramFamilies, ProgramRule, TemplateEvidence
from schemas import ClusterState, TemplateProgram


@dataclass(frozen=True)
class TemplateCluster:
    """All queries of one scope that share an NER template ("play <singer>'s <song>"), with
    their pooled function counts and label: kept alongside the semantic clusters."""

    app: str
    scope: str
    template: str
    queries: int
    size: int
    function_counts: dict[str, int]
    label: str
    dominant_function: str | None
    share_lower_bound: float


@dataclass(frozen=True)
class LearnerSummary:
    """Counts a person wants to see after a run."""

    events: int
    unique_queries: int
    clusters: int
    simple: int
    complex: int
    undecided: int
    training_examples: int
    entities: int
    store_version: int


class LearnerViews:
    """Views over clusters and groups; the host class provides the attributes below."""

    clusters: dict[int, Cluster]
    groups: dict[int, QueryGroup]
    settings: ClusteringSettings
    labeler: WilsonLabeler
    dictionaries: dict[str, EntityDictionary]
    _templaters: dict[str, QueryTemplater]
    _dictionary_factory: Callable[[], EntityDictionary]
    store_version: int
    template_settings: TemplateTierSettings
    template_evidence: dict[TemplateKey, TemplateEvidence]
    #: What makes a program live (the router's target precision and never-small functions).
    program_rule: ProgramRule
    #: The templates' programs pooled per family (kept up to date with ``template_evidence``).
    program_families: ProgramFamilies

    @property
    def embedder_id(self) -> str:  # pragma: no cover - overridden
        """Id of the embedder the state was built with."""
        raise NotImplementedError

    def dictionary_of(self, app: str) -> EntityDictionary:
        """The entity dictionary of ``app`` (user files + values learned from its calls)."""
        if app not in self.dictionaries:
            self.dictionaries[app] = self._dictionary_factory()
            self._templaters[app] = QueryTemplater(self.dictionaries[app])
        return self.dictionaries[app]

    def templater_of(self, app: str) -> QueryTemplater:
        """The templater over ``app``'s dictionary."""
        self.dictionary_of(app)
        return self._templaters[app]

    def templated(self, group: QueryGroup) -> TemplatedQuery:
        """A group's query templated with its app's current dictionary."""
        return TemplatedQuery.of(group.app, group.scope, self.templater_of(group.app).template(group.query))

    # -- views ---------------------------------------------------------------------------------
    def training_examples(self, cluster: Cluster) -> int:
        """Kept examples calling the dominant function (0 unless the cluster is simple)."""
        if cluster.label != "simple" or cluster.dominant_function is None:
            return 0
        cap = self.settings.max_examples_per_query
        return sum(
            min(cap, self.groups[g].function_counts.get(cluster.dominant_function, 0)) for g in cluster.group_ids
        )

    def cluster_state(self, cluster: Cluster) -> ClusterState:
        """The published state of a cluster."""
        top = sorted((self.groups[g] for g in cluster.group_ids), key=lambda g: (-g.count, g.norm))
        n = self.settings.state_samples
        templates: list[str] = []
        programs: list[TemplateProgram] = []
        for g in top[: 4 * n]:
            if len(templates) >= n:
                break
            t = self.templater_of(cluster.app).template(g.query)
            if t.has_entities and t.text not in templates:
                templates.append(t.text)
                shown = self._program_state(cluster.app, cluster.scope, t.text, template_text(t))
                if shown is not None:
                    programs.append(shown)
        return ClusterState(
            cluster_id=cluster_key(cluster.cluster_id),
            app=cluster.app,
            scope=cluster.scope,
            size=cluster.size,
            unique_queries=len(cluster.group_ids),
            function_counts=dict(sorted(cluster.function_counts.items())),
            dominant_function=cluster.dominant_function,
            dominant_share=round(cluster.dominant_share, 6),
            share_lower_bound=round(cluster.share_lower_bound, 6),
            label=cluster.label,  # type: ignore[arg-type]
            training_examples=self.training_examples(cluster),
            templates=templates,
            template_programs=programs,
            sample_queries=[g.query for g in top[:n]],
            version=max(cluster.version, 1),
            embedder_id=self.embedder_id,
        )

    def _program_state(self, app: str, scope: str, shown: str, text: str) -> TemplateProgram | None:
        """The published program of template ``text`` (shown as ``shown``), if it has one."""
        evidence = self.template_evidence.get((app, scope, text))
        program = self.program_rule.program(evidence) if evidence is not None else None
        if program is None:
            return None
        program = self.program_rule.with_family(program, self.program_families.of(app, program))
        live, reason = self.program_rule.live(program)
        return TemplateProgram(
            template=shown, function=program.function, sources=program.sources_text(), support=program.support,
            agreement=program.agreement, lower_bound=round(program.lower_bound, 6), live=live, reason=reason,
            pooled=program.pooled, family_templates=program.family_templates, family_support=program.family_support,
            family_agreement=program.family_agreement, family_lower_bound=round(program.family_lower_bound, 6),
        )

    def _refresh_families(self, keys: Iterable[TemplateKey]) -> None:
        """Count templates ``keys`` (their evidence changed) in their programs' families again."""
        for key in keys:
            evidence = self.template_evidence.get(key)
            self.program_families.update(key, key[0], self.program_rule.program(evidence) if evidence else None)

    def template_clusters(self, min_queries: int = 2) -> list[TemplateCluster]:
        """Template clusters: queries with entities grouped by (scope, template) under the current
        dictionaries, labelled like semantic clusters; those with at least ``min_queries`` queries,
        largest first. Derived from the groups, so it is the same after any replay or restart."""
        pooled: dict[TemplateKey, tuple[int, int, Counter[str]]] = {}
        for g in self.groups.values():
            if g.alias_of is not None:
                continue
            key = self.templated(g).template_key
            if key is None:
                continue
            n, size, counts = pooled.get(key, (0, 0, Counter()))
            pooled[key] = (n + 1, size + g.count, counts + g.function_counts)
        out = []
        for (app, scope, text), (n, size, counts) in pooled.items():
            if n < min_queries:
                continue
            d = self.labeler.label(counts)
            out.append(
                TemplateCluster(app, scope, text, n, size, dict(sorted(counts.items())), d.label, d.dominant_function,
                                round(d.share_lower_bound, 6))
            )
        return sorted(out, key=lambda t: (-t.size, t.template))

    def template_programs(self, *, target: float, z: float, pool: bool | None = None) -> dict[TemplateKey, Program]:
        """Every template's argument program (valid or not) for the router's ``target`` precision
        at confidence ``z``, judged with its family's evidence when ``pool`` (default: as the
        learner's rule says); templates whose answers made no call have none."""
        rule = replace(self.program_rule, target=target, z=z, pool=self.program_rule.pool if pool is None else pool)
        own = {key: rule.program(evidence) for key, evidence in self.template_evidence.items()}
        families = self.program_families
        if rule.pool and (target, z) != (families.target, families.z):
            families = rule.families(own)  # the kept families are those of the learner's own target
        out: dict[TemplateKey, Program] = {}
        for key, program in own.items():
            if program is not None:
                out[key] = rule.with_family(program, families.of(key[0], program))
        return out

    def summary(self) -> LearnerSummary:
        """Totals over the whole store."""
        labels = Counter(c.label for c in self.clusters.values())
        return LearnerSummary(
            events=sum(c.size for c in self.clusters.values()),
            unique_queries=sum(1 for g in self.groups.values() if g.alias_of is None),
            clusters=len(self.clusters),
            simple=labels["simple"],
            complex=labels["complex"],
            undecided=labels["undecided"],
            training_examples=sum(self.training_examples(c) for c in self.clusters.values()),
            entities=sum(len(d) for d in self.dictionaries.values()),
            store_version=self.store_version,
        )



class LearnerView(LearnerViews):
    """A read-only, consistent snapshot of a learner's state (no vector store, no writes)."""

    def __init__(
        self,
        db_path: Path,
        *,
        clustering: ClusteringSettings,
        templates: TemplateTierSettings | None = None,
        program_rule: ProgramRule | None = None,
        dictionary_factory: Callable[[], EntityDictionary] = EntityDictionary,
    ) -> None:
        if not db_path.exists():
            raise FileNotFoundError(f"no learner state at {db_path}: run the ingest agents first")
        self.db = LearnerStateDB(db_path, read_only=True)
        self.settings = clustering
        self.template_settings = templates if templates is not None else TemplateTierSettings()
        self.program_rule = program_rule if program_rule is not None else ProgramRule(
            self.template_settings.min_support, pool=self.template_settings.pool_families
        )
        self.labeler = WilsonLabeler(clustering.simple_share, clustering.wilson_z, clustering.min_support)
        self._dictionary_factory = dictionary_factory
        self.dictionaries = {}
        self._templaters = {}
        # One read transaction for the view's whole life: clusters, groups and the examples read
        # later (training sets) all come from the same committed state, while ingest goes on.
        self.db.conn.execute("BEGIN")
        self._embedder_id = self.db.get_meta("embedder_id") or ""
        self.store_version = int(self.db.get_meta(STORE_VERSION_KEY, "0") or 0)
        self.clusters = {c.cluster_id: c for c in self.db.load_clusters()}
        self.groups = {g.group_id: g for g in self.db.load_groups()}
        for app, etype, value, count in self.db.entities():
            self.dictionary_of(app).add(etype, value, source="learned", count=count)
        self.template_evidence = self.db.template_evidence(self.template_settings.max_observations)
        self.program_families = ProgramFamilies(self.program_rule.target, self.program_rule.z)
        self._refresh_families(self.template_evidence)

    @property
    def embedder_id(self) -> str:
        """Id of the embedder the state was built with."""
        return self._embedder_id

    def close(self) -> None:
        """End the read transaction and close the database connection."""
        if self.db.conn.in_transaction:
            self.db.conn.execute("COMMIT")
        self.db.close()

    def __enter__(self) -> LearnerView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
