"""Append-only audit trail: one record per change, written in the change's transaction."""

from django.db import models
from django.utils import timezone


class ActorType(models.TextChoices):
    API_KEY = "api_key", "API key"
    STAFF = "staff", "Staff user"
    COMMAND = "command", "Management command"
    SYSTEM = "system", "System"


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

    class Meta:
        indexes = [
            models.Index(fields=["resource_type", "resource_id", "-created_at"], name="ix_audit_resource"),
            models.Index(fields=["user_id", "-created_at"], name="ix_audit_user"),
            models.Index(fields=["-created_at", "-id"], name="ix_audit_created"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.resource_type}:{self.resource_id}"
