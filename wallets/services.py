"""Writes to the wallet registry. Each service owns its transaction and writes its audit record in it,
and counts its outcome (amani.metrics), whoever calls it: the API or the backfill."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from amani import metrics
from amani.actors import Actor
from amani.errors import DomainError
from audit.models import AuditAction, AuditResource
from audit.services import audit_record
from wallets import queries
from wallets.models import Wallet

# A lost insert race is resolved by running the statement again: the winner has committed by
# the time the unique index lets the loser's insert do nothing. More than a few rounds means
# something else.
REGISTER_ATTEMPTS = 3


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"


class WalletClaimed(DomainError):
    code = "wallet_claimed"


@dataclass(frozen=True)
class Registration:
    wallet: Wallet
    created: bool


def _matches(wallet: Wallet, *, user_id: UUID, provider: str, provider_account_id: str) -> bool:
    return (
        wallet.user_id == user_id and wallet.provider == provider and wallet.provider_account_id == provider_account_id
    )


def _replayed(
    candidates: list[Wallet], *, user_id: UUID, provider: str, provider_account_id: str, idempotency_key: str | None
) -> Wallet | None:
    """The earlier wallet this request replays, among those sharing its key or account; raises on a conflict.

    The key decides first (same parameters: replay; other parameters: 422), then the
    account (same user: replay; another user: 409).
    """
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


@metrics.outcome_counted(
    metrics.wallet_registration_observe,
    result=lambda registration: "created" if registration.created else "replayed",
    refusals={DomainError: "conflict"},
)
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
    """Register a wallet idempotently, deciding as the contract's table does (_replayed).

    Every call counts one registration outcome: created, replayed, conflict or error.
    One autocommit statement (wallets.queries.wallet_insert_unless_known) reads the
    wallets sharing the key or the account and, when there are none, inserts the wallet
    with its audit record: new or replayed, one round trip. A replay writes nothing, not
    even an audit record. When a racing request commits the same key or account while the
    statement runs, the insert does nothing and the statement finds nothing; it is then
    run again and decides against the winner's committed row.
    """
    # Compared with stored values below: a UUID given as text must still match.
    user_id = user_id if isinstance(user_id, UUID) else UUID(str(user_id))
    request = {"user_id": user_id, "provider": str(provider), "provider_account_id": provider_account_id}
    wallet = queries.wallet_columns(
        public_id=uuid4(),
        now=timezone.now(),
        **request,
        provider_customer_id=provider_customer_id,
        metadata=metadata if metadata is not None else {},
        idempotency_key=idempotency_key,
    )
    audit = {
        "action": AuditAction.REGISTER_WALLET,
        "actor_type": actor.type,
        "actor_id": actor.id,
        "request_id": actor.request_id,
        "resource_type": AuditResource.WALLET,
    }
    details = {
        "provider": wallet["provider"],
        "provider_account_id": provider_account_id,
        "provider_customer_id": provider_customer_id,
        "idempotency_key": idempotency_key,
    }
    for _ in range(REGISTER_ATTEMPTS):
        new, candidates = queries.wallet_insert_unless_known(wallet=wallet, audit=audit, details=details)
        if new is not None:
            return Registration(wallet=new, created=True)
        existing = _replayed(candidates, **request, idempotency_key=idempotency_key)
        if existing is not None:
            return Registration(wallet=existing, created=False)
        metrics.wallet_race_retry_observe()
    raise RuntimeError("a wallet registration lost its race more than REGISTER_ATTEMPTS times")


def _reason_clean(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["A reason is required."]})
    return reason


def _status_set(*, wallet: Wallet, is_active: bool, action: AuditAction, reason: str, actor: Actor) -> bool:
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
            resource_type=AuditResource.WALLET,
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
    return _status_set(wallet=wallet, is_active=False, action=AuditAction.DEACTIVATE_WALLET, reason=reason, actor=actor)


def wallet_reactivate(*, wallet: Wallet, reason: str, actor: Actor) -> bool:
    """Reactivate a wallet, with the reason in its audit record; a no-op when already active."""
    return _status_set(wallet=wallet, is_active=True, action=AuditAction.REACTIVATE_WALLET, reason=reason, actor=actor)
