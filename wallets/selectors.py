"""Reads of the wallet registry, shared by the API and the admin."""

from __future__ import annotations

from uuid import UUID

from django.db.models import QuerySet

from amani.api.errors import NotFound
from wallets.models import Wallet


def wallet_get(*, public_id: UUID) -> Wallet:
    """The wallet with this public id; NotFound (404) otherwise."""
    try:
        return Wallet.objects.get(public_id=public_id)
    except Wallet.DoesNotExist:
        raise NotFound("No wallet has this id.") from None


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
