"""Prometheus series of the webhook endpoint (same registry and multiprocess mode as amani.metrics).

deliveries by outcome      = sum by (provider, outcome) (rate(amani_webhook_deliveries_total[5m]))
verification failure ratio = sum(rate(amani_webhook_verification_failures_total[5m]))
                             / (sum(rate(amani_webhook_deliveries_total[5m]))
                                + sum(rate(amani_webhook_verification_failures_total[5m])))
"""

from __future__ import annotations

from prometheus_client import Counter

from webhooks.models import Outcome
from webhooks.providers import PROVIDERS

webhook_deliveries = Counter(
    "amani_webhook_deliveries",
    "Verified provider webhook deliveries by provider and outcome "
    "(created, duplicate, conflict, unmatched, ignored, invalid).",
    ["provider", "outcome"],
)
webhook_verification_failures = Counter(
    "amani_webhook_verification_failures",
    "Provider webhook deliveries refused with 401 bad_signature, by provider.",
    ["provider"],
)

for _provider in PROVIDERS:
    webhook_verification_failures.labels(provider=_provider)
    for _outcome in Outcome.values:
        webhook_deliveries.labels(provider=_provider, outcome=_outcome)


def webhook_delivery_observe(*, provider: str, outcome: str) -> None:
    webhook_deliveries.labels(provider=provider, outcome=outcome).inc()


def webhook_verification_failure_observe(*, provider: str) -> None:
    webhook_verification_failures.labels(provider=provider).inc()
