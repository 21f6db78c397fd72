"""Prometheus metrics of the serving consumer (one registry per consumer, so tests never collide).

Exposed names (Prometheus adds ``_total`` / ``_bucket`` suffixes):

* ``odia_serving_requests_total{served_by, reason}``: responses sent, by who answered and why;
* ``odia_serving_escalations_total{reason}``: small-model answers escalated to the large model;
* ``odia_serving_template_misses_total{reason}``: small-routed requests the template tier left to the
  small model (:data:`~odia_stream.routing.template_tier.MISS_REASONS`);
* ``odia_serving_errors_total{kind}``: error responses (``malformed``, ``large_model``, ``internal``);
* ``odia_serving_latency_seconds{stage, served_by}``: route / template / generate / validate / total;
* ``odia_serving_swaps_total{status}`` and ``odia_serving_swap_seconds``: hot-swap events;
* ``odia_serving_active_version{adapter_version, router_version}``: 1 for the serving pair;
* ``odia_serving_in_flight``: requests being answered;
* ``odia_serving_shadow_checks_total{outcome}``: ``agree``, ``disagree``, ``skipped``, ``error``;
* ``odia_serving_hedges_total{winner}``: small generations the large call was started beside, by
  whose answer was sent (``small``, ``large``, ``none``: both failed);
* ``odia_serving_small_path_open``: 1 while the latency gate lets small-routed requests use the
  small path, 0 while it sends them large (``small_not_faster``);
* ``odia_serving_latency_estimate_seconds{path}``: the gate's rolling medians (``small``, ``large``).
"""

from __future__ import annotations

from functools import partial

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from schemas import ServeResponse

__all__ = ["LATENCY_BUCKETS_S", "ServingMetrics"]

#: Latency buckets from 5 ms (router, small model on a GPU) to 20 s (a slow large model).
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0)


class ServingMetrics:
    """The serving metrics on their own :class:`CollectorRegistry`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        counter = partial(Counter, registry=self.registry)
        gauge = partial(Gauge, registry=self.registry)
        histogram = partial(Histogram, registry=self.registry)
        self.requests = counter(
            "odia_serving_requests", "Responses sent, by who answered and why", ["served_by", "reason"]
        )
        self.escalations = counter(
            "odia_serving_escalations", "Small-model answers escalated to the large model", ["reason"]
        )
        self.template_misses = counter(
            "odia_serving_template_misses", "Small-routed requests the template tier left to the small model",
            ["reason"],
        )
        self.errors = counter("odia_serving_errors", "Error responses, by kind", ["kind"])
        self.latency = histogram(
            "odia_serving_latency_seconds", "Time spent per stage of answering", ["stage", "served_by"],
            buckets=LATENCY_BUCKETS_S,
        )
        self.swaps = counter("odia_serving_swaps", "Hot-swap events, by outcome", ["status"])
        self.swap_seconds = histogram(
            "odia_serving_swap_seconds", "Time from receiving a ModelUpdate to switching to it",
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
        )
        self.active_version = gauge(
            "odia_serving_active_version", "1 for the generator/router version pair new requests start on",
            ["adapter_version", "router_version"],
        )
        self.in_flight = gauge("odia_serving_in_flight", "Requests being answered")
        self.shadow_checks = counter(
            "odia_serving_shadow_checks", "Shadow checks of small-model answers, by outcome", ["outcome"]
        )
        self.trust_probes = counter(
            "odia_serving_trust_probes",
            "Small-model probes of functions the adapter is not trusted with, by outcome",
            ["outcome"],
        )
        self.hedges = counter(
            "odia_serving_hedges",
            "Small generations the large call was started beside, by whose answer was sent",
            ["winner"],
        )
        self.small_path_open = gauge(
            "odia_serving_small_path_open", "1 while the latency gate lets requests use the small path",
        )
        self.small_path_open.set(1)
        self.latency_estimate = gauge(
            "odia_serving_latency_estimate_seconds", "The latency gate's rolling median of each path", ["path"]
        )

    def set_small_path(self, open_: bool, small_ms: float | None, large_ms: float | None) -> None:
        """Show the latency gate's state and estimates (an estimate not made yet is left as it was)."""
        self.small_path_open.set(1 if open_ else 0)
        for path, ms in (("small", small_ms), ("large", large_ms)):
            if ms is not None:
                self.latency_estimate.labels(path).set(ms / 1000.0)

    def observe(self, response: ServeResponse) -> None:
        """Count one sent response and its latency breakdown."""
        self.requests.labels(response.served_by, response.route_reason).inc()
        lat = response.latency
        for stage, ms in (
            ("route", lat.route_ms),
            ("template", lat.template_ms),
            ("generate", lat.generate_ms),
            ("validate", lat.validate_ms),
            ("total", lat.total_ms),
        ):
            self.latency.labels(stage, response.served_by).observe(ms / 1000.0)

    def set_version(self, adapter_version: str | None, router_version: str | None) -> None:
        """Mark the serving pair (the previous pair's series is removed)."""
        self.active_version.clear()
        self.active_version.labels(adapter_version or "none", router_version or "none").set(1)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """The current value of one sample (0 when it has not been recorded), for reports and tests."""
        got = self.registry.get_sample_value(name, labels or {})
        return float(got) if got is not None else 0.0
