"""Reads of the wallet registry, shared by the API and the admin."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from django.db.models import QuerySet

from amani.errors import NotFound
from wallets import queries
from wallets.models import Wallet


@dataclass(slots=True)
class WalletRef:
    """What deciding an event needs of its wallet."""

    id: int
    public_id: UUID
    provider: str
    user_id: UUID

    @classmethod
    def of(cls, wallet: Wallet) -> WalletRef:
        return cls(wallet.pk, wallet.public_id, wallet.provider, wallet.user_id)


def wallet_get(*, public_id: UUID) -> Wallet:
    """The wallet with this public id; NotFound (404) otherwise.

    Hand-written SQL (wallets.queries): every event request starts here, and compiling the ORM query
    cost more CPU than the indexed lookup (docs/benchmarks.md).

    Always on the primary, also inside `reading_from_replica()`: whether a wallet exists
    is read-your-writes, so a wallet registered a moment ago is never a 404 because a
    replica lags; only what is read after it (events, balances) may lag (docs/scaling.md).
    """
    wallet = queries.wallet_by_public_id(public_id)
    if wallet is None:
        raise NotFound("No wallet has this id.")
    return wallet


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


def wallet_refs_get(*, public_ids: Iterable[UUID]) -> dict[UUID, WalletRef]:
    """The wallets with these public ids, in one query."""
    ids = list(public_ids)
    if not ids:
        return {}
    return {
        public_id: WalletRef(pk, public_id, provider, user_id)
        for pk, public_id, provider, user_id in queries.wallet_refs_rows(ids)
    }
