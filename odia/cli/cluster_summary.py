"""Human-readable views of the learner's state (terminal tables)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from odia_stream.clustering.learner import OnlineClusterLearner


def print_cluster_summary(learner: OnlineClusterLearner, console: Console, top: int = 15) -> None:
    """Totals, then the ``top`` largest clusters with label, dominant function and samples."""
    s = learner.summary()
    console.print(
        f"[bold]{s.events}[/] events, [bold]{s.unique_queries}[/] unique queries, [bold]{s.clusters}[/] clusters: "
        f"[green]{s.simple} simple[/], [red]{s.complex} complex[/], {s.undecided} undecided; "
        f"{s.training_examples} training examples; {s.entities} dictionary entities (state v{s.store_version})"
    )
    table = Table("cluster", "label", "size", "queries", "dominant function", "share (lower bound)", "sample")
    clusters = sorted(learner.clusters.values(), key=lambda c: (-c.size, c.cluster_id))[:top]
    for c in clusters:
        st = learner.cluster_state(c)
        colour = {"simple": "green", "complex": "red"}.get(st.label, "yellow")
        table.add_row(
            st.cluster_id[:10],
            f"[{colour}]{st.label}[/]",
            str(st.size),
            str(st.unique_queries),
            st.dominant_function or "-",
            f"{st.dominant_share:.2f} ({st.share_lower_bound:.2f})",
            (st.sample_queries[0] if st.sample_queries else "")[:50],
        )
    console.print(table)
    templates = learner.template_clusters()[:top]
    if templates:
        tt = Table("template", "label", "queries", "records", "dominant function", title="largest template clusters")
        for t in templates:
            colour = {"simple": "green", "complex": "red"}.get(t.label, "yellow")
            tt.add_row(t.template[:60], f"[{colour}]{t.label}[/]", str(t.queries), str(t.size), t.dominant_function or "-")
        console.print(tt)
