"""Provider webhook deliveries: every verified delivery, as received, with how it was decided."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone


class Outcome(models.TextChoices):
    CREATED = "created", "Created an event"
    DUPLICATE = "duplicate", "Duplicate (already recorded)"
    CONFLICT = "conflict", "Conflict (reference known with other content)"
    UNMATCHED = "unmatched", "Unmatched (no wallet yet)"
    IGNORED = "ignored", "Ignored (not a recorded money movement)"
    INVALID = "invalid", "Invalid (amount or currency unreadable)"


class WebhookDelivery(models.Model):
    """One verified delivery. Written only through webhooks.services; the body is kept as received."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    provider = models.CharField(max_length=32)
    received_at = models.DateTimeField(default=timezone.now)
    body = models.TextField()
    event_name = models.CharField(max_length=255, blank=True)
    # The provider's reference (the event's provider_event_id) when the payload has one.
    reference = models.CharField(max_length=255, null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    reason = models.TextField(blank=True)
    # When the movement occurred, as decided (Fincra without createdAt: the first delivery's received time).
    occurred_at = models.DateTimeField(null=True, blank=True)
    # By the event's public id: what the ingest decision returns for new and earlier events alike.
    event = models.ForeignKey(
        "events.WalletEvent", to_field="public_id", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    wallet = models.ForeignKey(
        "wallets.Wallet", null=True, blank=True, on_delete=models.PROTECT, related_name="webhook_deliveries"
    )
    decided_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        indexes = [
            # The first delivery of a reference (Fincra's occurred_at) and support's search by reference.
            models.Index(fields=["provider", "reference", "id"], name="ix_webhook_provider_reference"),
            # replay_webhooks walks only the unmatched ones, oldest first.
            models.Index(fields=["id"], condition=Q(outcome="unmatched"), name="ix_webhook_unmatched"),
            # A wallet's deliveries, latest first (the wallet console's timeline), keyset-paged.
            models.Index(fields=["wallet", "-received_at", "-id"], name="ix_webhook_wallet_received"),
            # The admin list filtered by outcome, latest first.
            models.Index(fields=["outcome", "-id"], name="ix_webhook_outcome"),
        ]
        permissions = [("replay_webhookdelivery", "Can decide unmatched webhook deliveries again")]

    def __str__(self) -> str:
        return f"{self.provider} {self.event_name or '-'} {self.reference or '-'} ({self.outcome})"
