"""Append-only audit trail: one record per change, written in the change's transaction."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils import timezone

from amani.actors import ActorType


class AuditRecordImmutable(Exception):
    """Raised on any attempt to change or delete an audit record through the ORM."""


class AuditRecordQuerySet(models.QuerySet):
    """Inserts only: the database trigger (migration 0002) is the second line of defence."""

    def update(self, **kwargs: Any) -> int:
        raise AuditRecordImmutable("Audit records are append-only; they cannot be updated.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AuditRecordImmutable("Audit records are append-only; they cannot be deleted.")


class AuditRecord(models.Model):
    action = models.CharField(max_length=64)
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_id = models.CharField(max_length=255, blank=True)
    user_id = models.UUIDField(null=True, blank=True)
    resource_type = models.CharField(max_length=64)
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
