"""Append-only audit trail: one record per change, written in the change's transaction."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils import timezone

from amani.actors import ActorType


class AuditAction(models.TextChoices):
    """Every change the trail records (Zulip's AuditLogEventType): one member per service that audits.

    The label is the stored value, so the admin shows what the rows hold.
    """

    # access: API clients and keys (access/services.py)
    CREATE_API_CLIENT = "create_api_client", "create_api_client"
    UPDATE_API_CLIENT = "update_api_client", "update_api_client"
    CREATE_API_KEY = "create_api_key", "create_api_key"
    REVOKE_API_KEY = "revoke_api_key", "revoke_api_key"
    EXPIRE_API_KEY = "expire_api_key", "expire_api_key"
    # wallets
    REGISTER_WALLET = "register_wallet", "register_wallet"
    DEACTIVATE_WALLET = "deactivate_wallet", "deactivate_wallet"
    REACTIVATE_WALLET = "reactivate_wallet", "reactivate_wallet"
    BACKFILL_WALLETS_BATCH = "backfill_wallets_batch", "backfill_wallets_batch"
    # events
    INGEST_EVENT = "ingest_event", "ingest_event"
    INGEST_EVENTS_BATCH = "ingest_events_batch", "ingest_events_batch"
    BACKFILL_EVENTS_BATCH = "backfill_events_batch", "backfill_events_batch"
    RECORD_PROVIDER_BALANCE = "record_provider_balance", "record_provider_balance"
    REPAIR_BALANCE_BUCKETS = "repair_balance_buckets", "repair_balance_buckets"
    # webhooks
    REPLAY_WEBHOOK_DELIVERY = "replay_webhook_delivery", "replay_webhook_delivery"


class AuditResource(models.TextChoices):
    """What an audit record is about (its resource_type): one vocabulary, like AuditAction."""

    API_CLIENT = "api_client", "api_client"
    API_KEY = "api_key", "api_key"
    WALLET = "wallet", "wallet"
    WALLET_BACKFILL = "wallet_backfill", "wallet_backfill"
    WALLET_EVENT = "wallet_event", "wallet_event"
    WALLET_EVENT_BATCH = "wallet_event_batch", "wallet_event_batch"
    WALLET_EVENT_BACKFILL = "wallet_event_backfill", "wallet_event_backfill"
    PROVIDER_BALANCE_REPORT = "provider_balance_report", "provider_balance_report"
    BALANCE_BUCKET = "balance_bucket", "balance_bucket"
    WEBHOOK_DELIVERY = "webhook_delivery", "webhook_delivery"


class AuditRecordImmutable(Exception):
    """Raised on any attempt to change or delete an audit record through the ORM."""


class AuditRecordQuerySet(models.QuerySet):
    """Inserts only: the database trigger (migration 0002) is the second line of defence."""

    def update(self, **kwargs: Any) -> int:
        raise AuditRecordImmutable("Audit records are append-only; they cannot be updated.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AuditRecordImmutable("Audit records are append-only; they cannot be deleted.")


class AuditRecord(models.Model):
    action = models.CharField(max_length=64, choices=AuditAction.choices)
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_id = models.CharField(max_length=255, blank=True)
    user_id = models.UUIDField(null=True, blank=True)
    resource_type = models.CharField(max_length=64, choices=AuditResource.choices)
    resource_id = models.CharField(max_length=64)
    details = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = AuditRecordQuerySet.as_manager()

    class Meta:
        indexes = [
            # Resource ids are UUIDs, unique across resource types: one index serves both the
            # admin's exact search and "this wallet's records" (resource_type is a filter).
            models.Index(fields=["resource_id", "-created_at"], name="ix_audit_resource_id"),
            models.Index(fields=["user_id", "-created_at"], name="ix_audit_user"),
            models.Index(fields=["-created_at", "-id"], name="ix_audit_created"),
            models.Index(
                fields=["request_id"],
                name="ix_audit_request",
                condition=~models.Q(request_id=""),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.resource_type}:{self.resource_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AuditRecordImmutable("Audit records are append-only; they cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AuditRecordImmutable("Audit records are append-only; they cannot be deleted.")
