"""The one way to write audit records. Callers run it inside their own transaction."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from amani.actors import Actor
from audit.models import AuditAction, AuditRecord
from audit.queries import audit_records_insert


def _build(
    *,
    action: AuditAction,
    actor: Actor,
    resource_type: str,
    resource_id: str,
    user_id: UUID | None = None,
    details: dict[str, Any] | None = None,
) -> AuditRecord:
    return AuditRecord(
        action=action,
        actor_type=actor.type,
        actor_id=actor.id,
        request_id=actor.request_id,
        user_id=user_id,
        resource_type=resource_type,
        resource_id=str(resource_id),
        details=details or {},
    )


def audit_record(
    *,
    action: AuditAction,
    actor: Actor,
    resource_type: str,
    resource_id: str,
    user_id: UUID | None = None,
    details: dict[str, Any] | None = None,
) -> AuditRecord:
    """Write one audit record in the caller's transaction."""
    record = _build(
        action=action,
        actor=actor,
        resource_type=resource_type,
        resource_id=resource_id,
        user_id=user_id,
        details=details,
    )
    return audit_records_insert([record])[0]


def audit_record_many(*, records: list[dict[str, Any]], actor: Actor) -> list[AuditRecord]:
    """Write many audit records in one INSERT (batch ingestion, backfills)."""
    return audit_records_insert([_build(actor=actor, **fields) for fields in records])
