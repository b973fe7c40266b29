"""Reads of webhook deliveries, for the admin and the wallet console."""

from __future__ import annotations

import datetime as dt

from django.db.models import Q

from wallets.models import Wallet
from webhooks.models import WebhookDelivery


def webhook_delivery_list_for_wallet(
    *, wallet: Wallet, limit: int = 50, before: tuple[dt.datetime, int] | None = None
) -> list[WebhookDelivery]:
    """A wallet's deliveries, latest received first, for its timeline; keyset-paged on (received_at, id).

    Pass the last row's `(received_at, id)` as `before` for the next page; served by
    ix_webhook_wallet_received whatever the page. The body is deferred (it can be large).
    """
    queryset = WebhookDelivery.objects.filter(wallet=wallet).defer("body").select_related("event")
    if before is not None:
        received_at, delivery_id = before
        queryset = queryset.filter(Q(received_at__lt=received_at) | Q(received_at=received_at, id__lt=delivery_id))
    return list(queryset.order_by("-received_at", "-id")[:limit])
