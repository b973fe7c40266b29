"""Reads of the history: the head, the last verification, the seal lag."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from history.models import Block, Verification
from history.queries import records_unsealed


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
    the lag errs high, never low. One statement (history.queries.records_unsealed).
    """
    return SealLag(*records_unsealed())
