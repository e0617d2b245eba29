"""Prometheus metrics: requests per route from every gunicorn process, the rest read from Redis at scrape time.

Request counts and latencies are per process; under gunicorn's several processes they are kept in
prometheus-client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set by `sieve api`), so a scrape that
lands on any process sums them all. Queue depth, pool sizes and refresh outcomes live in Redis already
(the workers count refreshes there), so they are read when scraped, never held in a process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from flask import Flask, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from sieve.limits import MAX_METRICS_POOLS
from sieve.storage.scrape import ScrapeReads

if TYPE_CHECKING:
    from sieve.job_queue import RefreshQueues

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
"""Methods counted by name; any other is counted as `other`, so that clients cannot add label values."""

LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Request latency buckets (seconds): a query takes milliseconds, a large pool creation seconds."""


def multiprocess_mode() -> bool:
    return "PROMETHEUS_MULTIPROC_DIR" in os.environ


class RedisCollector:
    """Gauges and counters computed from Redis when Prometheus scrapes."""

    def __init__(self, reads: ScrapeReads, queue: RefreshQueues):
        self.reads = reads
        self.queue = queue

    def collect(self):
        depth = GaugeMetricFamily(
            "sieve_queue_depth", "Refresh jobs waiting in the queue (all its lanes).", labels=["queue"]
        )
        depth.add_metric([self.queue.name], self.queue.count)
        yield depth
        yield from self._pools()
        outcomes, buckets, seconds = self.reads.refresh_stats()
        jobs = CounterMetricFamily("sieve_refresh_jobs", "Refresh jobs that ended, by outcome.", labels=["outcome"])
        for outcome, count in sorted(outcomes.items()):
            jobs.add_metric([outcome], count)
        yield jobs
        failures = CounterMetricFamily("sieve_refresh_failures", "Refresh jobs that raised an error.")
        failures.add_metric([], outcomes.get("failed", 0))
        yield failures
        durations = HistogramMetricFamily("sieve_refresh_duration_seconds", "How long refresh jobs ran.")
        durations.add_metric([], buckets, seconds)
        yield durations

    def _pools(self):
        total, sizes = self.reads.pool_sizes(MAX_METRICS_POOLS)
        count = GaugeMetricFamily("sieve_pools", "Pools that exist.")
        count.add_metric([], total)
        yield count
        families = {
            name: GaugeMetricFamily(f"sieve_pool_{name}", doc, labels=["pool_id"])
            for name, doc in (
                ("items", "Items in the pool."),
                ("labeled", "Items labeled for training."),
                ("eval", "Evaluation items."),
            )
        }
        for size in sizes:
            for family, value in zip(families.values(), (size.items, size.labeled, size.eval)):
                family.add_metric([size.pool_id], value)
        yield from families.values()


def install(app: Flask, reads: ScrapeReads, queue: RefreshQueues) -> Callable[[], bytes]:
    """Counts and times every request by method, route and status; the exposition /metrics serves.

    Every label has a bounded set of values: a known method or `other`, the URL rule (never the raw path)
    or `unmatched`, and the status code."""
    registry = CollectorRegistry()
    requests = Counter(
        "sieve_http_requests", "HTTP requests answered.", ["method", "route", "status"], registry=registry
    )
    latency = Histogram(
        "sieve_http_request_duration_seconds",
        "Time to answer an HTTP request.",
        ["method", "route"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    collector = RedisCollector(reads, queue)
    if not multiprocess_mode():
        registry.register(collector)

    @app.before_request
    def _start_clock():
        g.started = time.perf_counter()

    @app.after_request
    def _count(response):
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        method = request.method if request.method in METHODS else "other"
        requests.labels(method, route, str(response.status_code)).inc()
        if "started" in g:
            latency.labels(method, route).observe(time.perf_counter() - g.started)
        return response

    def exposition() -> bytes:
        if not multiprocess_mode():
            return generate_latest(registry)
        # Every process's request counts, summed from the files they share, plus what Redis holds.
        scrape = CollectorRegistry()
        multiprocess.MultiProcessCollector(scrape)
        scrape.register(collector)
        return generate_latest(scrape)

    return exposition
