"""Reads of the history: the head, the last verification, the seal lag."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import connection

from history.encoding import KINDS
from history.models import Block, Verification


def history_head() -> Block | None:
    """The latest block (without its record index), or None before the first seal."""
    return Block.objects.defer("event_ids", "event_public_ids", "audit_ids", "digests").order_by("-number").first()


def verification_latest() -> Verification | None:
    return Verification.objects.order_by("-finished_at", "-id").first()


@dataclass(frozen=True)
class SealLag:
    unsealed: int
    oldest: dt.datetime | None
    now: dt.datetime

    @property
    def seconds(self) -> float:
        """Seconds since the oldest record not yet sealed was written; 0 when everything is sealed."""
        return max(0.0, (self.now - self.oldest).total_seconds()) if self.oldest is not None else 0.0


def seal_lag() -> SealLag:
    """What committed and is not sealed yet: how many records, and the oldest one's created_at.

    created_at is written at insert, so for a long transaction it is earlier than the commit:
    the lag errs high, never low. The index on xact_id (history 0003) keeps this a scan of the tail.
    """
    # The last block's bound by its primary key (bounds grow with the number): max(xact_to)
    # would read every block, 86,400 more a day at one seal a second.
    head = "coalesce((SELECT xact_to FROM history_block ORDER BY number DESC LIMIT 1), 0)"
    unsealed = " UNION ALL ".join(
        f"SELECT created_at FROM {kind.table} WHERE xact_id >= {head}"  # noqa: S608
        for kind in KINDS
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), min(created_at), now() FROM ({unsealed}) AS unsealed")  # noqa: S608
        count, oldest, now = cursor.fetchone()
    return SealLag(count, oldest, now)
