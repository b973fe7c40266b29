"""Listing and balance reads on a PostgreSQL streaming replica (DATABASE_REPLICA_URL).

Views that only read (event history, balances, reconciliation) wrap their work in
`reading_from_replica()`; the router then sends their reads to the "replica" alias.
Everything else, every write, and any read inside a transaction on the primary stays
on "default", so a service never reads its own half-written change from a replica that
cannot see it. A replica lags the primary by its replay delay: a read routed there may
miss a change committed a moment ago. Hand-written SQL on `django.db.connection` stays on
the primary: the wallet lookup that decides a 404 (wallets.selectors.wallet_get) is
read-your-writes on purpose (docs/scaling.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections

REPLICA = "replica"

_replica_reads: ContextVar[bool] = ContextVar("amani_replica_reads", default=False)


@contextmanager
def reading_from_replica() -> Iterator[None]:
    """Route reads made inside the block to the replica, when one is configured.

    Usable as a decorator too. A contextvar, not a thread-local, so it is also
    correct under async views and threaded workers.
    """
    token = _replica_reads.set(True)
    try:
        yield
    finally:
        _replica_reads.reset(token)


def replica_configured() -> bool:
    return REPLICA in connections.settings


class ReplicaRouter:
    """Django database router: reads inside `reading_from_replica()` go to "replica"."""

    def db_for_read(self, model: type, **hints: Any) -> str | None:
        if not _replica_reads.get() or not replica_configured():
            return None
        if connections[DEFAULT_DB_ALIAS].in_atomic_block:
            return None  # read-your-writes: a transaction on the primary reads the primary
        return REPLICA

    def db_for_write(self, model: type, **hints: Any) -> str | None:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        # The replica is a physical copy of the primary: objects from both may relate.
        return True

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints: Any) -> bool | None:
        # A streaming replica replays the primary's WAL; it is never migrated itself.
        return db != REPLICA
