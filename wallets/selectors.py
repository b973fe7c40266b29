"""Reads of the wallet registry, shared by the API and the admin."""

from __future__ import annotations

from functools import cache
from uuid import UUID

from django.db import connection
from django.db.models import QuerySet

from amani.errors import NotFound
from amani.rows import model_from_row
from wallets.models import Wallet


@cache
def _wallet_get_sql() -> str:
    meta = Wallet._meta
    columns = ", ".join(f'"{field.column}"' for field in meta.concrete_fields)
    return f'SELECT {columns} FROM "{meta.db_table}" WHERE "public_id" = %s'  # noqa: S608 (names only)


def wallet_get(*, public_id: UUID) -> Wallet:
    """The wallet with this public id; NotFound (404) otherwise.

    Hand-written SQL: every event request starts here, and compiling the ORM query
    cost more CPU than the indexed lookup (docs/benchmarks.md).

    Always on the primary, also inside `reading_from_replica()`: whether a wallet exists
    is read-your-writes, so a wallet registered a moment ago is never a 404 because a
    replica lags; only what is read after it (events, balances) may lag (docs/scaling.md).
    """
    with connection.cursor() as cursor:
        cursor.execute(_wallet_get_sql(), [public_id])
        row = cursor.fetchone()
    if row is None:
        raise NotFound("No wallet has this id.")
    return model_from_row(Wallet, row, connection)


def wallet_list(
    *,
    user_id: UUID | None = None,
    provider: str | None = None,
    is_active: bool | None = None,
) -> QuerySet[Wallet]:
    """Wallets matching every given filter; order and paging are the caller's (keyset_page)."""
    queryset = Wallet.objects.all()
    if user_id is not None:
        queryset = queryset.filter(user_id=user_id)
    if provider is not None:
        queryset = queryset.filter(provider=provider)
    if is_active is not None:
        queryset = queryset.filter(is_active=is_active)
    return queryset
