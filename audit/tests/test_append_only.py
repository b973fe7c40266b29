"""Audit records are written once and never changed or deleted, by the ORM or by SQL.

The service's role may not even try (amani/tests/test_database_role.py); the trigger
refuses the tables' owner too, which is what these SQL tests connect as."""

import pytest
from django.db import DatabaseError, connection

from amani.actors import Actor
from audit.models import AuditRecord, AuditRecordImmutable
from audit.services import audit_record, audit_record_many
from audit.tests.factories import AuditRecordFactory
from testing import roles

pytestmark = pytest.mark.django_db


def test_audit_record_service_writes_actor_and_request():
    record = audit_record(
        action="register_wallet",
        actor=Actor.api_key("key_1", "req-1"),
        resource_type="wallet",
        resource_id="abc",
        details={"provider": "fincra"},
    )
    stored = AuditRecord.objects.get(pk=record.pk)
    assert (stored.actor_type, stored.actor_id, stored.request_id) == ("api_key", "key_1", "req-1")
    assert stored.details == {"provider": "fincra"}


def test_audit_record_many_inserts_every_record():
    records = audit_record_many(
        records=[{"action": "a", "resource_type": "wallet", "resource_id": str(i)} for i in range(3)],
        actor=Actor.command("backfill"),
    )
    assert len(records) == 3
    assert AuditRecord.objects.filter(actor_type="command", actor_id="backfill").count() == 3


@pytest.mark.django_db(transaction=True)
def test_trigger_refuses_an_update():
    record = AuditRecordFactory(action="register_wallet")
    with roles.database_owner(), pytest.raises(DatabaseError, match="append-only"), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditrecord SET action = 'tampered' WHERE id = %s", [record.pk])
    assert AuditRecord.objects.get(pk=record.pk).action == "register_wallet"


@pytest.mark.django_db(transaction=True)
def test_trigger_refuses_a_delete():
    record = AuditRecordFactory()
    with roles.database_owner(), pytest.raises(DatabaseError, match="append-only"), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditrecord WHERE id = %s", [record.pk])
    assert AuditRecord.objects.filter(pk=record.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_trigger_refuses_a_bulk_delete():
    AuditRecordFactory.create_batch(3)
    with roles.database_owner(), pytest.raises(DatabaseError, match="append-only"), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditrecord")
    assert AuditRecord.objects.count() == 3


def test_orm_refuses_saving_an_existing_record():
    record = AuditRecordFactory(action="register_wallet")
    record.action = "tampered"
    with pytest.raises(AuditRecordImmutable):
        record.save()
    assert AuditRecord.objects.get(pk=record.pk).action == "register_wallet"


def test_orm_refuses_deleting_a_record():
    record = AuditRecordFactory()
    with pytest.raises(AuditRecordImmutable):
        record.delete()
    with pytest.raises(AuditRecordImmutable):
        AuditRecord.objects.filter(pk=record.pk).delete()
    with pytest.raises(AuditRecordImmutable):
        AuditRecord.objects.filter(pk=record.pk).update(action="tampered")
    assert AuditRecord.objects.get(pk=record.pk).action == record.action
