"""Provider webhook deliveries as rows of the wallet console's timeline (events.console)."""

from __future__ import annotations

from django.db.models import QuerySet

from events.console import TimelineFilters, TimelineRow, TimelineSource
from wallets.models import Wallet
from webhooks.models import WebhookDelivery


def _delivery_rows(wallet: Wallet, filters: TimelineFilters) -> QuerySet:
    # ix_webhook_wallet_received serves the keyset scan; the body can be large and is not shown.
    return WebhookDelivery.objects.filter(wallet_id=wallet.pk).defer("body")


def _delivery_row(delivery: WebhookDelivery) -> TimelineRow:
    reference = f"reference {delivery.reference}" if delivery.reference else ""
    detail = "; ".join(part for part in (reference, delivery.reason) if part)
    return TimelineRow(
        at=delivery.received_at,
        kind="webhook",
        pk=delivery.pk,
        title=f"{delivery.provider} {delivery.event_name or 'delivery'}: {delivery.outcome}",
        detail=detail,
        detail_url_name="admin:webhooks_webhookdelivery_change",
    )


# A delivery has no currency or event type of its own: those filters leave it out.
DELIVERY_SOURCE = TimelineSource(
    "webhook",
    "Provider webhook deliveries",
    "received_at",
    _delivery_rows,
    _delivery_row,
    accepts=lambda filters: not filters.event_type and not filters.currency,
)
