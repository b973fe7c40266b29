"""Events and sealed blocks refuse UPDATE and DELETE in the database, whoever connects.

The service's role may not even try (amani/tests/test_database_role.py); the triggers refuse
the tables' owner too, which is what these tests connect as."""

import pytest
from django.db import DatabaseError, connection, transaction

from events.models import WalletEvent
from events.tests.factories import WalletEventFactory
from history import encoding
from testing import roles

pytestmark = pytest.mark.django_db


@pytest.mark.django_db(transaction=True)
def test_deleting_an_event_is_refused_and_names_the_correction():
    event = WalletEventFactory()
    refused = pytest.raises(DatabaseError, match="compensating event")
    with roles.database_owner(), refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM events_walletevent WHERE id = %s", [event.pk])
    assert WalletEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_updating_an_event_is_refused():
    event = WalletEventFactory(amount="100.00")
    refused = pytest.raises(DatabaseError, match="append-only: UPDATE")
    with roles.database_owner(), refused, transaction.atomic():
        WalletEvent.objects.filter(pk=event.pk).update(amount="1.00")
    assert WalletEvent.objects.get(pk=event.pk).amount == 100


@pytest.mark.django_db(transaction=True)
def test_deleting_through_the_orm_is_refused():
    event = WalletEventFactory()
    with roles.database_owner(), pytest.raises(DatabaseError, match="append-only: DELETE"), transaction.atomic():
        event.delete()


@pytest.mark.parametrize("kind", encoding.KINDS, ids=lambda kind: kind.name)
def test_the_encoding_covers_every_stored_column(kind):
    """A column added later must be added to the encoding (a new version) on purpose, not forgotten."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
            [kind.table],
        )
        columns = {name for (name,) in cursor.fetchall()}
    assert columns == set(kind.columns)
    assert len(kind.columns) == len(set(kind.columns))


def test_every_new_record_carries_its_writing_transaction():
    with transaction.atomic(), connection.cursor() as cursor:
        event = WalletEventFactory()
        cursor.execute("SELECT pg_current_xact_id()::text::bigint")
        (current,) = cursor.fetchone()
        cursor.execute("SELECT xact_id FROM events_walletevent WHERE id = %s", [event.pk])
        assert cursor.fetchone() == (current,)
