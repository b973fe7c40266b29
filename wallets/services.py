"""Writes to the wallet registry. Each service owns its transaction and writes its audit record in it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from rest_framework import status

from amani import metrics
from amani.api.errors import DomainError
from audit.services import Actor, audit_record
from wallets.models import Wallet

RESOURCE_TYPE = "wallet"
ACTION_REGISTER = "register_wallet"
ACTION_DEACTIVATE = "deactivate_wallet"
ACTION_REACTIVATE = "reactivate_wallet"

# A lost insert race is resolved by one re-fetch: the winner has committed by the time
# the unique index lets the loser fail. More than a few rounds means something else.
REGISTER_ATTEMPTS = 3


class IdempotencyKeyReused(DomainError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    code = "idempotency_key_reused"


class WalletClaimed(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "wallet_claimed"


@dataclass(frozen=True)
class Registration:
    wallet: Wallet
    created: bool


def _matches(wallet: Wallet, *, user_id: UUID, provider: str, provider_account_id: str) -> bool:
    return (
        wallet.user_id == user_id and wallet.provider == provider and wallet.provider_account_id == provider_account_id
    )


def _existing(*, user_id: UUID, provider: str, provider_account_id: str, idempotency_key: str | None) -> Wallet | None:
    """The earlier wallet this request replays, or None; raises when the request conflicts.

    One query fetches both candidates (by key and by natural key); the key decides first.
    """
    natural = Q(provider=provider, provider_account_id=provider_account_id)
    condition = natural | Q(idempotency_key=idempotency_key) if idempotency_key is not None else natural
    candidates = list(Wallet.objects.filter(condition)[:2])
    request = {"user_id": user_id, "provider": provider, "provider_account_id": provider_account_id}

    if idempotency_key is not None:
        by_key = next((w for w in candidates if w.idempotency_key == idempotency_key), None)
        if by_key is not None:
            if _matches(by_key, **request):
                return by_key
            raise IdempotencyKeyReused(
                "This Idempotency-Key was already used to register a different wallet "
                "(another user_id, provider or provider_account_id)."
            )
    by_account = next(
        (w for w in candidates if w.provider == provider and w.provider_account_id == provider_account_id), None
    )
    if by_account is not None:
        if by_account.user_id == user_id:
            return by_account
        raise WalletClaimed("This provider account is already registered to another user.")
    return None


def wallet_register(
    *,
    user_id: UUID,
    provider: str,
    provider_account_id: str,
    provider_customer_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    actor: Actor,
) -> Registration:
    """Register a wallet idempotently, deciding as the contract's table does.

    The key decides first (same parameters: replay; other parameters: 422), then the
    natural key (provider, provider_account_id) (same user: replay; another user: 409).
    Otherwise the wallet and its audit record are inserted in one atomic block (a
    savepoint inside a caller's transaction); a unique violation means a concurrent
    request won, so the decision is taken again against its committed row.
    A replay writes nothing, not even an audit record.
    """
    # Compared with stored values below: a UUID given as text must still match.
    user_id = user_id if isinstance(user_id, UUID) else UUID(str(user_id))
    request = {"user_id": user_id, "provider": str(provider), "provider_account_id": provider_account_id}
    for attempt in range(REGISTER_ATTEMPTS):
        # The decision reads committed rows only, so a replay (the common retry) is one
        # query and opens no transaction.
        existing = _existing(**request, idempotency_key=idempotency_key)
        if existing is not None:
            return Registration(wallet=existing, created=False)
        try:
            # The wallet and its audit record commit together. Inside a caller's
            # transaction this is a savepoint, so a lost race leaves the caller's work intact.
            with transaction.atomic():
                wallet = Wallet.objects.create(
                    **request,
                    provider_customer_id=provider_customer_id,
                    metadata=metadata if metadata is not None else {},
                    idempotency_key=idempotency_key,
                )
                audit_record(
                    action=ACTION_REGISTER,
                    actor=actor,
                    user_id=wallet.user_id,
                    resource_type=RESOURCE_TYPE,
                    resource_id=str(wallet.public_id),
                    details={
                        "provider": wallet.provider,
                        "provider_account_id": wallet.provider_account_id,
                        "provider_customer_id": wallet.provider_customer_id,
                        "idempotency_key": wallet.idempotency_key,
                    },
                )
        except IntegrityError:
            # A concurrent request committed the same key or account first (READ COMMITTED:
            # the unique index made this insert wait for it). Decide again against its row.
            metrics.wallet_race_retry_observe()
            if attempt == REGISTER_ATTEMPTS - 1:
                raise
            continue
        return Registration(wallet=wallet, created=True)
    raise AssertionError("unreachable")  # pragma: no cover


def _reason_clean(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["A reason is required."]})
    return reason


def _status_set(*, wallet: Wallet, is_active: bool, action: str, reason: str, actor: Actor) -> bool:
    reason = _reason_clean(reason)
    with transaction.atomic():
        # The row lock serialises concurrent status changes, so each real change is audited once.
        locked = Wallet.objects.select_for_update().get(pk=wallet.pk)
        if locked.is_active == is_active:
            wallet.is_active, wallet.updated_at = locked.is_active, locked.updated_at
            return False
        locked.is_active = is_active
        locked.save(update_fields=["is_active", "updated_at"])
        audit_record(
            action=action,
            actor=actor,
            user_id=locked.user_id,
            resource_type=RESOURCE_TYPE,
            resource_id=str(locked.public_id),
            details={"reason": reason, "is_active": is_active},
        )
    wallet.is_active, wallet.updated_at = locked.is_active, locked.updated_at
    return True


def wallet_deactivate(*, wallet: Wallet, reason: str, actor: Actor) -> bool:
    """Deactivate a wallet, with the reason in its audit record.

    Returns whether anything changed: an already inactive wallet is left alone and
    no audit record is written, so repeating the action is harmless.
    """
    return _status_set(wallet=wallet, is_active=False, action=ACTION_DEACTIVATE, reason=reason, actor=actor)


def wallet_reactivate(*, wallet: Wallet, reason: str, actor: Actor) -> bool:
    """Reactivate a wallet, with the reason in its audit record; a no-op when already active."""
    return _status_set(wallet=wallet, is_active=True, action=ACTION_REACTIVATE, reason=reason, actor=actor)
