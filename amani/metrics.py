"""Prometheus metrics: the runbook's four for wallet registration and event ingestion,
request latency, and authentication failures.

The outcome counters are incremented by the services that decide the outcomes
(wallets.services, events.services), whoever calls them: the API, the webhooks, the
admin, the backfill commands. A dry run counts nothing (outcomes_uncounted). The access
log (amani.logging) observes latency and authentication failures only.

The metric objects live in the process-wide default registry. Under gunicorn,
gunicorn.conf.py sets PROMETHEUS_MULTIPROC_DIR before the workers import this
module, so prometheus-client writes every value to per-process files there and
`/metrics` merges all workers' files (multiprocess mode); without it, `/metrics`
serves this process's registry.

Derived series (PromQL):
  registration success rate = sum(rate(amani_wallet_registrations_total{outcome=~"created|replayed"}[5m]))
                              / sum(rate(amani_wallet_registrations_total[5m]))
  idempotent hit rate       = rate(amani_wallet_registrations_total{outcome="replayed"}[5m])
                              / sum(rate(amani_wallet_registrations_total{outcome=~"created|replayed"}[5m]))
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable, Iterator, Mapping
from typing import ParamSpec, Protocol, TypeVar

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

from amani.api.errors import error_response

REGISTRATION_OUTCOMES = ("created", "replayed", "conflict", "error")
INGESTION_OUTCOMES = ("created", "replayed", "conflict", "invalid", "error")
BATCH_STATUSES = ("created", "duplicate", "conflict", "invalid")

wallet_registrations = Counter(
    "amani_wallet_registrations",
    "Wallet registrations by outcome: created, replayed (idempotent hit), conflict (422/409), error.",
    ["outcome"],
)
wallet_registration_race_retries = Counter(
    "amani_wallet_registration_race_retries",
    "IntegrityErrors caught and resolved by re-fetching during wallet registration.",
)
event_ingestions = Counter(
    "amani_event_ingestions",
    "Single event ingestions by outcome: created, replayed, conflict, invalid (a record or wallet refused), "
    "error (an unexpected failure).",
    ["outcome"],
)
event_batch_items = Counter(
    "amani_event_batch_items",
    "Items of POST /events/batch and backfills by status: created, duplicate, conflict, invalid.",
    ["status"],
)
event_ingestion_race_retries = Counter(
    "amani_event_ingestion_race_retries",
    "Event ingestion transactions run again after PostgreSQL broke a deadlock between racing writers "
    "(plain races need no retry: INSERT ... ON CONFLICT DO NOTHING resolves them without an error).",
)
auth_failures = Counter(
    "amani_auth_failures",
    "Refused API requests by error code (401 codes and 403 insufficient_scope).",
    ["code"],
)
request_latency = Histogram(
    "amani_http_request_duration_seconds",
    "Request latency by route template, method and status class.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

# Pre-create the label sets the dashboards divide by, so rates exist from the first scrape.
for _outcome in REGISTRATION_OUTCOMES:
    wallet_registrations.labels(outcome=_outcome)
for _outcome in INGESTION_OUTCOMES:
    event_ingestions.labels(outcome=_outcome)
for _status in BATCH_STATUSES:
    event_batch_items.labels(status=_status)


# False while outcomes_uncounted() runs (in this context only: other threads and requests still count).
_counting: contextvars.ContextVar[bool] = contextvars.ContextVar("counting", default=True)


@contextlib.contextmanager
def outcomes_uncounted() -> Iterator[None]:
    """Registrations, ingestions and batch items decided inside are not counted: a dry run stores nothing."""
    token = _counting.set(False)
    try:
        yield
    finally:
        _counting.reset(token)


P = ParamSpec("P")
R = TypeVar("R")


class OutcomeObserver(Protocol):
    def __call__(self, *, outcome: str) -> None: ...


def outcome_counted(
    observe: OutcomeObserver, *, result: Callable[[R], str], refusals: Mapping[type[Exception], str]
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Make a service count one outcome per call with `observe`: `result(value)` when it returns,
    the outcome of the first of `refusals` it raised, `error` for any other exception."""

    def decorate(service: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(service)
        def counted(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                value = service(*args, **kwargs)
            except Exception as exc:
                outcome = next((name for kind, name in refusals.items() if isinstance(exc, kind)), "error")
                observe(outcome=outcome)
                raise
            observe(outcome=result(value))
            return value

        return counted

    return decorate


def wallet_registration_observe(*, outcome: str) -> None:
    """Count one wallet registration: created, replayed, conflict or error."""
    if _counting.get():
        wallet_registrations.labels(outcome=outcome).inc()


def wallet_race_retry_observe() -> None:
    """Count one IntegrityError caught while registering a wallet."""
    wallet_registration_race_retries.inc()


def event_ingestion_observe(*, outcome: str) -> None:
    """Count one single-event ingestion: created, replayed, conflict, invalid or error."""
    if _counting.get():
        event_ingestions.labels(outcome=outcome).inc()


def event_race_retry_observe() -> None:
    """Count one IntegrityError caught while ingesting events."""
    event_ingestion_race_retries.inc()


def event_batch_observe(*, summary: Mapping[str, int]) -> None:
    """Count a batch's items by status, from its summary."""
    if not _counting.get():
        return
    for status, count in summary.items():
        if count:
            event_batch_items.labels(status=status).inc(count)


def auth_failure_observe(*, code: str) -> None:
    auth_failures.labels(code=code).inc()


def request_observe(*, route: str, method: str, status: int, seconds: float) -> None:
    """One request's latency; the status is recorded by class (2xx, 4xx, 5xx)."""
    request_latency.labels(route=route, method=method, status=f"{status // 100}xx").observe(seconds)


# Gauges read from the database at scrape time (the same whichever worker answers), registered
# by the apps that own them (history.apps); appended to either exposition below.
scrape_time = CollectorRegistry()


def metrics_text() -> bytes:
    """The exposition of every worker (multiprocess mode) or of this process, then the scrape-time gauges."""
    if settings.PROMETHEUS_MULTIPROC_DIR:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=settings.PROMETHEUS_MULTIPROC_DIR)
        return generate_latest(registry) + generate_latest(scrape_time)
    return generate_latest() + generate_latest(scrape_time)


@csrf_exempt  # a POST gets the 405 envelope below, not CsrfViewMiddleware's HTML 403
def metrics_view(request: HttpRequest) -> HttpResponse:
    """`GET /metrics`, unauthenticated: deployments expose it on the internal network only."""
    if request.method not in ("GET", "HEAD"):
        response = error_response(405, "method_not_allowed", f'Method "{request.method}" not allowed.')
        response["Allow"] = "GET, HEAD"
        return response
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)
