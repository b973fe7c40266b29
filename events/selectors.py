"""Reads of wallet events, shared by the API and the admin."""

from __future__ import annotations

import datetime as dt

from amani.api.pagination import Page, keyset_page
from events.models import WalletEvent
from wallets.models import Wallet


def wallet_event_list(
    *,
    wallet: Wallet,
    event_type: str | None = None,
    occurred_after: dt.datetime | None = None,
    occurred_before: dt.datetime | None = None,
    limit: int,
    cursor: str | None = None,
) -> Page:
    """One page of a wallet's events, `occurred_at` descending, ties newest-recorded (id) first.

    Bounds are inclusive. Every page is one range scan of ix_event_wallet_occurred
    (wallet_id, occurred_at DESC, id DESC) starting at the cursor, so page 1,000
    reads about as many rows as page 1. The cursor is bound to the wallet and the
    filters: reusing it with other filters is a 400.
    """
    queryset = WalletEvent.objects.filter(wallet_id=wallet.pk)
    if event_type is not None:
        queryset = queryset.filter(event_type=event_type)
    if occurred_after is not None:
        queryset = queryset.filter(occurred_at__gte=occurred_after)
    if occurred_before is not None:
        queryset = queryset.filter(occurred_at__lte=occurred_before)
    listing = ":".join(
        [
            "wallet-events",
            str(wallet.public_id),
            event_type or "",
            occurred_after.astimezone(dt.UTC).isoformat() if occurred_after else "",
            occurred_before.astimezone(dt.UTC).isoformat() if occurred_before else "",
        ]
    )
    return keyset_page(queryset, time_field="occurred_at", limit=limit, cursor=cursor, listing=listing)
