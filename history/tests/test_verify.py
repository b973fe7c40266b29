"""verify_history and scripts/verify_history.py: the same answer, naming the first bad block and record."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from events.tests.factories import WalletEventFactory
from history.models import Block, Verification
from history.services import history_seal
from history.tests.support import both_verify, command_verify, script_process, tamper, write_records
from testing import roles

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def chain():
    """Three blocks: (events, audit records) of each."""
    made = []
    for _ in range(3):
        made.append(write_records(events=3, audits=2))
        history_seal()
    return made


def test_an_untouched_chain_verifies(chain):
    head = Block.objects.order_by("-number").first()
    assert both_verify() == (0, f"blocks=3 records=15 head={head.hash}")
    assert both_verify("--head", head.hash)[0] == 0
    earlier = Block.objects.get(number=1).hash
    assert both_verify("--head", earlier.upper())[0] == 0  # a published head, however it was copied


def test_an_empty_history_verifies():
    assert both_verify() == (0, "blocks=0 records=0 head=" + "0" * 64)


def test_a_head_that_is_not_a_block_fails(chain):
    status, line = both_verify("--head", "ab" * 32)
    assert status == 1 and line.startswith("mismatch change=not-in-chain")
    assert both_verify("--head", "not-a-hash")[0] == 1


def test_a_changed_event_field_names_the_event(chain):
    event = chain[1][0][1]
    tamper("UPDATE events_walletevent SET amount = amount + 1 WHERE id = %s", [event.pk])
    status, line = both_verify()
    assert status == 1
    assert line.startswith(f"mismatch block=2 event={event.public_id} id={event.pk} change=changed")


def test_a_changed_metadata_key_is_a_change(chain):
    event = chain[0][0][0]
    tamper('UPDATE events_walletevent SET metadata = \'{"note": "edited"}\' WHERE id = %s', [event.pk])
    assert both_verify()[1].startswith(f"mismatch block=1 event={event.public_id} id={event.pk} change=changed")


def test_a_changed_audit_record_names_it(chain):
    record = chain[2][1][0]
    tamper("UPDATE audit_auditrecord SET actor_id = 'someone else' WHERE id = %s", [record.pk])
    assert both_verify()[1].startswith(f"mismatch block=3 audit={record.pk} change=changed")


def test_a_deleted_event_is_missing_with_its_public_id(chain):
    event = chain[0][0][2]
    tamper("DELETE FROM events_walletevent WHERE id = %s", [event.pk])
    assert both_verify()[1].startswith(f"mismatch block=1 event={event.public_id} id={event.pk} change=missing")


def test_a_truncated_table_is_missing_from_the_first_block(chain):
    first = chain[0][1][0]
    with roles.database_owner(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE audit_auditrecord")  # needs ownership; no trigger stops it
    assert both_verify()[1].startswith(f"mismatch block=1 audit={first.pk} change=missing")


def test_a_row_inserted_inside_a_sealed_range_is_unsealed(chain):
    """Copied with every column, its transaction id included, as a restore of a doctored dump would."""
    model = chain[1][0][0]
    tamper(
        "INSERT INTO events_walletevent (public_id, wallet_id, provider, event_type, amount, currency, "
        "provider_event_id, idempotency_key, metadata, occurred_at, created_at, xact_id) "
        "SELECT gen_random_uuid(), wallet_id, provider, event_type, amount, currency, 'slipped-in', NULL, "
        "metadata, occurred_at, created_at, xact_id FROM events_walletevent WHERE id = %s",
        [model.pk],
    )
    status, line = both_verify()
    assert status == 1 and line.startswith("mismatch block=2 event=") and "change=unsealed" in line


def test_a_row_inserted_later_with_an_old_id_is_caught_before_and_after_sealing(chain):
    with pytest.raises(RuntimeError), transaction.atomic():  # leaves a gap in the ids block 4 covers
        gap = WalletEventFactory().pk
        raise RuntimeError("rolled back")
    write_records(events=2, audits=0)
    history_seal()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO events_walletevent (id, public_id, wallet_id, provider, event_type, amount, currency, "
            "provider_event_id, metadata, occurred_at, created_at) SELECT %s, gen_random_uuid(), wallet_id, "
            "provider, event_type, amount, currency, 'backdated', metadata, occurred_at, created_at "
            "FROM events_walletevent WHERE id = %s RETURNING public_id",
            [gap, chain[1][0][0].pk],
        )
        (public_id,) = cursor.fetchone()
    status, line = both_verify()
    assert status == 1
    assert line.startswith(f"mismatch block=4 event={public_id} id={gap} change=unsealed")
    assert "not sealed yet" in line
    history_seal()  # the sealer takes it like any record: the chain keeps the evidence
    status, line = both_verify()
    assert line.startswith(f"mismatch block=4 event={public_id} id={gap} change=unsealed")
    assert "sealed in block 5" in line


@pytest.mark.parametrize(
    "edit",
    [
        "hash = repeat('a', 64)",
        "sealed_at = sealed_at + interval '1 second'",
        "previous_hash = repeat('0', 64)",
        "event_count = event_count + 1",
        "xact_next = xact_next + 1",
    ],
)
def test_an_edited_block_row_is_caught(chain, edit):
    tamper(f"UPDATE history_block SET {edit} WHERE number = 2")  # noqa: S608
    status, line = both_verify()
    assert status == 1 and line.startswith("mismatch block=2 change=block-changed")


def test_a_deleted_block_breaks_the_chain(chain):
    tamper("DELETE FROM history_block WHERE number = 2")
    assert both_verify()[1].startswith("mismatch block=2 change=block-changed")


def test_the_command_records_each_run_for_the_admin(chain):
    assert command_verify()[0] == 0
    tamper("DELETE FROM events_walletevent WHERE id = %s", [chain[2][0][0].pk])
    assert command_verify()[0] == 1
    passed, failed = Verification.objects.order_by("id")
    assert (passed.ok, passed.blocks, passed.records, passed.problem) == (True, 3, 15, "")
    assert (failed.ok, failed.blocks, failed.records) == (False, 2, 10)
    assert failed.problem.startswith("mismatch block=3 event=")


def test_the_script_runs_alone_without_django(chain):
    done = script_process()
    head = Block.objects.order_by("-number").first().hash
    assert (done.returncode, done.stdout.strip()) == (0, f"blocks=3 records=15 head={head}"), done.stderr
    record = chain[0][1][1]
    tamper("""UPDATE audit_auditrecord SET details = '{"edited": true}' WHERE id = %s""", [record.pk])
    done = script_process()
    assert done.returncode == 1 and done.stdout.startswith(f"mismatch block=1 audit={record.pk} change=changed")
    assert script_process("postgresql://nobody@127.0.0.1:1/none").returncode == 2
