"""Provider webhooks: one decision per delivery, shared by the endpoint, `replay_webhooks` and the admin.

A verified delivery is stored as received, in the same transaction as whatever it
decides: a money movement becomes an event through events.services.event_ingest (the
decision of `POST …/events/ingest`, deduplicated by provider + provider_event_id, which
is the provider's reference), so a provider's retries, a backfill of the same export
and API ingests of the same reference can never count twice.

Storing a delivery is not audited: the delivery row is itself the record of what arrived,
and the event it creates is audited by event_ingest. Deciding a stored delivery again
(replay) changes it, so each replay that changes an outcome writes an audit record.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from amani.actors import Actor
from amani.errors import DomainError
from amani.money import amount_format
from audit.models import AuditAction, AuditResource
from audit.services import audit_record
from events.services import EventConflict, event_ingest
from events.validation import event_parse
from wallets.models import Wallet
from webhooks.models import Outcome, WebhookDelivery
from webhooks.providers import PROVIDERS
from webhooks.providers.base import Movement, NotRecorded, ProviderModule, payload_parse
from webhooks.queries import delivery_insert, reference_lock, wallets_by_provider_key

REPLAY_CHUNK = 500
# What deciding a delivery sets (a replay updates these, never the body as received).
_DECISION_FIELDS = ["event_name", "reference", "outcome", "reason", "occurred_at", "event", "wallet", "decided_at"]


@dataclass(frozen=True)
class Receipt:
    """How a delivery was decided: its outcome and the event it created or repeated (None otherwise)."""

    outcome: str
    event_id: uuid.UUID | None


@dataclass
class ReplaySummary:
    replayed: int = 0
    created: int = 0
    duplicate: int = 0
    conflict: int = 0
    unmatched: int = 0
    invalid: int = 0
    ignored: int = 0  # not in the contract's line: a stored movement is never re-read as ignored

    def line(self) -> str:
        """The contract's summary line of `manage.py replay_webhooks`."""
        return (
            f"replayed={self.replayed} created={self.created} duplicate={self.duplicate} "
            f"conflict={self.conflict} unmatched={self.unmatched} invalid={self.invalid}"
        )


def webhook_actor(provider: str, request_id: str = "") -> Actor:
    """Who records an event a provider pushed: the system, on behalf of that provider's webhook."""
    return Actor(type="system", id=f"webhook:{provider}", request_id=request_id)


def _first_occurrence(*, provider: str, reference: str, default: dt.datetime) -> dt.datetime:
    """When a movement without its own time occurred: as decided for the first stored delivery of its
    reference, else `default` (this delivery's received time).

    The reference lock serialises the deliveries of one reference until commit, so a provider's
    concurrent retries agree on the time (and are duplicates, never conflicts).
    """
    reference_lock(provider=provider, reference=reference)
    first = (
        WebhookDelivery.objects.filter(provider=provider, reference=reference, occurred_at__isnull=False)
        .order_by("id")
        .values_list("occurred_at", flat=True)
        .first()
    )
    return first or default


def _wallet_find(*, provider: str, movement: Movement) -> tuple[Wallet | None, str]:
    """The one wallet of this provider the movement names, or None and why."""
    if movement.wallet_key is None:
        return None, f"The payload names no wallet ({movement.wallet_field})."
    wallets = wallets_by_provider_key(provider=provider, field=movement.wallet_field, key=movement.wallet_key)
    if not wallets:
        return None, f"No {provider} wallet has {movement.wallet_field} {movement.wallet_key!r}."
    if len(wallets) > 1:
        return None, f"Several {provider} wallets have {movement.wallet_field} {movement.wallet_key!r}."
    return wallets[0], ""


def _shown(text: str) -> str:
    """Text for support's eyes that PostgreSQL can hold: NUL and lone surrogates escaped, the rest as is."""
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def _read(delivery: WebhookDelivery, module: ProviderModule, payload: dict[str, Any]) -> Movement | None:
    """Read a delivery's payload (no database): the money movement to decide, or None with the
    delivery's outcome set (ignored or invalid)."""
    event_name = payload.get("event")
    delivery.event_name = _shown(event_name)[:255] if isinstance(event_name, str) else ""
    delivery.decided_at = timezone.now()
    delivery.event_id = None
    delivery.wallet = None
    result = module.interpret(payload)
    delivery.reference = result.reference[:255] if result.reference else None
    if isinstance(result, NotRecorded):
        delivery.outcome, delivery.reason = result.outcome, result.reason
        return None
    return result


def _decide(delivery: WebhookDelivery, module: ProviderModule, result: Movement, actor: Actor) -> uuid.UUID | None:
    """Decide a money movement in the caller's transaction, setting the delivery's outcome, event and wallet.

    Returns the public id of the event it created or repeated.
    """
    occurred_at = result.occurred_at
    if occurred_at is None:
        occurred_at = _first_occurrence(
            provider=module.NAME, reference=result.reference, default=delivery.received_at
        ).isoformat()
    data = {
        "event_type": result.event_type,
        "amount": amount_format(result.amount, result.currency),
        "currency": result.currency,
        "provider_event_id": result.reference,
        "occurred_at": occurred_at,
        "metadata": {"webhook_delivery_id": str(delivery.public_id), "webhook_event": delivery.event_name},
    }
    try:
        item = event_parse(data, now=delivery.decided_at)
    except DomainError as exc:
        delivery.outcome, delivery.reason = Outcome.INVALID, exc.message
        return None
    delivery.occurred_at = item.occurred_at
    wallet, why = _wallet_find(provider=module.NAME, movement=result)
    if wallet is None:
        delivery.outcome, delivery.reason = Outcome.UNMATCHED, why
        return None
    delivery.wallet = wallet
    try:
        ingestion = event_ingest(wallet_id=wallet.public_id, item=item, actor=actor)
    except EventConflict as exc:
        existing = exc.extra.get("existing_event_id")
        delivery.outcome, delivery.reason = Outcome.CONFLICT, f"{exc.message} existing_event_id={existing}"
        return None
    delivery.event_id = ingestion.event.public_id
    delivery.outcome = Outcome.CREATED if ingestion.created else Outcome.DUPLICATE
    delivery.reason = ""
    return ingestion.event.public_id


def webhook_receive(
    *, module: ProviderModule, body: bytes, payload: dict[str, Any], received_at: dt.datetime, actor: Actor
) -> Receipt:
    """Store one verified delivery (a JSON object, `payload` parsed from `body`) and decide it, atomically."""
    delivery = WebhookDelivery(
        public_id=uuid.uuid4(), provider=module.NAME, received_at=received_at, body=body.decode("utf-8")
    )
    movement = _read(delivery, module, payload)
    if movement is None:  # ignored or invalid: the delivery is the only write
        delivery_insert(delivery)
        return Receipt(delivery.outcome, None)
    with transaction.atomic():
        event_id = _decide(delivery, module, movement, actor)
        delivery_insert(delivery)
    return Receipt(delivery.outcome, event_id)


def webhook_delivery_replay(*, delivery_id: int, actor: Actor) -> str | None:
    """Decide one unmatched delivery again; its new outcome, or None when it was decided meanwhile."""
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().filter(pk=delivery_id, outcome=Outcome.UNMATCHED).first()
        module = PROVIDERS.get(delivery.provider) if delivery is not None else None
        if delivery is None or module is None:
            return None
        before = delivery.outcome
        movement = _read(delivery, module, payload_parse(delivery.body.encode("utf-8")))
        event_id = _decide(delivery, module, movement, actor) if movement is not None else None
        delivery.save(update_fields=_DECISION_FIELDS)
        if delivery.outcome != before:
            audit_record(
                action=AuditAction.REPLAY_WEBHOOK_DELIVERY,
                actor=actor,
                resource_type=AuditResource.WEBHOOK_DELIVERY,
                resource_id=str(delivery.public_id),
                user_id=delivery.wallet.user_id if delivery.wallet else None,
                details={
                    "provider": delivery.provider,
                    "reference": delivery.reference,
                    "from": before,
                    "to": delivery.outcome,
                    "event_id": str(event_id) if event_id else None,
                    "wallet_id": str(delivery.wallet.public_id) if delivery.wallet else None,
                },
            )
        return delivery.outcome


def webhook_deliveries_replay(
    *, actor: Actor, provider: str | None = None, public_ids: Iterable[uuid.UUID] | None = None
) -> ReplaySummary:
    """Decide every unmatched delivery again (of one provider, or these deliveries), oldest first.

    Each delivery is its own transaction, so a long replay holds no lock for long and
    a stop loses nothing; running it again decides what is still unmatched.
    """
    summary = ReplaySummary()
    outcomes: Counter[str] = Counter()
    queryset = WebhookDelivery.objects.filter(outcome=Outcome.UNMATCHED)
    if provider is not None:
        queryset = queryset.filter(provider=provider)
    if public_ids is not None:
        queryset = queryset.filter(public_id__in=list(public_ids))
    last_id = 0
    while ids := list(queryset.filter(id__gt=last_id).order_by("id").values_list("id", flat=True)[:REPLAY_CHUNK]):
        for delivery_id in ids:
            outcome = webhook_delivery_replay(delivery_id=delivery_id, actor=actor)
            if outcome is not None:
                summary.replayed += 1
                outcomes[outcome] += 1
        last_id = ids[-1]
    for outcome, count in outcomes.items():
        setattr(summary, outcome, count)
    return summary
