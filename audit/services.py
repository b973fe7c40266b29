"""The one way to write audit records. Callers run it inside their own transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from audit.models import ActorType, AuditRecord


@dataclass(frozen=True)
class Actor:
    """Who made a change, and under which request."""

    type: str
    id: str = ""
    request_id: str = ""

    @classmethod
    def api_key(cls, key_id: str, request_id: str = "") -> Actor:
        return cls(ActorType.API_KEY, key_id, request_id)

    @classmethod
    def staff(cls, username: str, request_id: str = "") -> Actor:
        return cls(ActorType.STAFF, username, request_id)

    @classmethod
    def command(cls, name: str) -> Actor:
        return cls(ActorType.COMMAND, name)

    @classmethod
    def system(cls) -> Actor:
        return cls(ActorType.SYSTEM, "system")


def _build(
    *,
    action: str,
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
    action: str,
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
    record.save(force_insert=True)
    return record


def audit_record_many(*, records: list[dict[str, Any]], actor: Actor) -> list[AuditRecord]:
    """Write many audit records in one INSERT (batch ingestion, backfills)."""
    return AuditRecord.objects.bulk_create([_build(actor=actor, **fields) for fields in records])
