"""Sealing: every committed record once, in chained blocks, never blocked by (or skipping) an open writer."""

from __future__ import annotations

import hashlib
import threading

import psycopg
import pytest
from django.db import DatabaseError, connection, transaction

from audit.models import AuditRecord
from audit.tests.factories import AuditRecordFactory
from events.models import WalletEvent
from events.tests.factories import WalletEventFactory
from history import encoding
from history.models import GENESIS_HASH, Block
from history.services import history_seal
from history.tests.support import both_verify, dsn, tamper, write_records
from testing import roles
from wallets.tests.factories import WalletFactory

pytestmark = pytest.mark.django_db(transaction=True)
WAIT = 30  # seconds any step may take before the test fails instead of hanging


def test_a_seal_takes_every_committed_record_once():
    events, audits = write_records(events=3, audits=2)
    sealed = history_seal()
    assert (sealed.number, sealed.records, sealed.records_total) == (1, 5, 5)
    assert history_seal() is None
    block = Block.objects.get()
    assert block.event_ids == [event.pk for event in events]
    assert [str(public_id) for public_id in block.event_public_ids] == [str(event.public_id) for event in events]
    assert block.audit_ids == [record.pk for record in audits]
    assert (block.previous_hash, block.hash, len(block.digests)) == (GENESIS_HASH, sealed.hash, 5 * 32)


def test_blocks_chain_and_the_hash_is_recomputable_from_the_runbook():
    write_records(events=1, audits=0)
    first = history_seal()
    (event,) = write_records(events=1, audits=0)[0]
    second = history_seal()
    block = Block.objects.get(number=2)
    assert (block.previous_hash, block.records_total) == (first.hash, 2)
    # docs/runbooks/history.md by hand: the header line, then the record's line of PostgreSQL text values.
    columns = ", ".join(f"{column}::text" for column in encoding.EVENT.columns)
    with connection.cursor() as cursor:
        cursor.execute("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'")
        cursor.execute(f"SELECT {columns} FROM events_walletevent WHERE id = %s", [event.pk])  # noqa: S608
        fields = cursor.fetchone()
        cursor.execute("SELECT sealed_at::text FROM history_block WHERE number = 2")
        (sealed_at,) = cursor.fetchone()
    escape = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
    line = "\t".join(["event", *("\\N" if value is None else value.translate(escape) for value in fields)]) + "\n"
    head = f"amani-history/1\t2\t{first.hash}\t{sealed_at}\t{block.xact_from}\t{block.xact_to}\t{block.xact_next}\n"
    assert fields[encoding.EVENT.columns.index("amount")] == "100.0000"
    assert hashlib.sha256((head + line).encode()).hexdigest() == second.hash == block.hash


def test_sealed_blocks_refuse_update_and_delete():
    WalletEventFactory()
    history_seal()
    for sql in ("UPDATE history_block SET hash = repeat('0', 64)", "DELETE FROM history_block"):
        refused = pytest.raises(DatabaseError, match="Sealed blocks are evidence")
        with roles.database_owner(), refused, transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert Block.objects.count() == 1


def test_an_open_writer_is_sealed_later_never_skipped_and_never_blocks_the_seal():
    """The writer of the lower id commits after a higher id was sealed: a later block takes it."""
    wallet_event = WalletEventFactory()  # the wallet the racing writers use
    wallet = wallet_event.wallet
    steps = {name: threading.Event() for name in ("early_has_xid", "late_inserted", "early_committed", "commit_late")}
    ids: dict[str, int] = {}
    errors: list[BaseException] = []

    def early() -> None:
        """Takes its transaction id first, inserts its event after `late` drew a lower id, commits first."""
        try:
            with transaction.atomic():
                AuditRecordFactory()
                steps["early_has_xid"].set()
                assert steps["late_inserted"].wait(WAIT)
                ids["early"] = WalletEventFactory(wallet=wallet).pk
            steps["early_committed"].set()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def late() -> None:
        try:
            assert steps["early_has_xid"].wait(WAIT)
            with transaction.atomic():
                ids["late"] = WalletEventFactory(wallet=wallet).pk
                steps["late_inserted"].set()
                assert steps["commit_late"].wait(WAIT)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=early), threading.Thread(target=late)]
    for thread in threads:
        thread.start()
    try:
        assert steps["early_committed"].wait(WAIT), errors
        assert ids["late"] < ids["early"]
        first = history_seal()  # `late` is still open: the seal neither waits for it nor takes its id
        block = Block.objects.get(number=first.number)
        assert ids["early"] in block.event_ids and ids["late"] not in block.event_ids
    finally:
        steps["commit_late"].set()
        for thread in threads:
            thread.join(WAIT)
    assert not errors and not any(thread.is_alive() for thread in threads)
    second = history_seal()
    assert Block.objects.get(number=second.number).event_ids == [ids["late"]]
    assert set(WalletEvent.objects.values_list("pk", flat=True)) == {
        pk for block in Block.objects.all() for pk in block.event_ids
    }
    result = both_verify()
    assert result == (0, f"blocks=2 records={second.records_total} head={second.hash}"), result


def test_a_rolled_back_writer_leaves_nothing_to_seal_and_no_false_alarm():
    WalletEventFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        WalletEventFactory()
        raise RuntimeError("rolled back")
    history_seal()
    WalletEventFactory()
    history_seal()
    assert both_verify()[0] == 0


def test_a_backlog_is_sealed_in_blocks_of_whole_transactions_of_bounded_size():
    for _ in range(3):
        write_records(events=2, audits=1)  # autocommit: a transaction per record
    with transaction.atomic():
        big = WalletEventFactory.create_batch(5)  # one transaction of five events
    sizes = []
    while (block := history_seal(max_records=2)) is not None:
        sizes.append(block.records)
        if not block.more:
            break
    assert sum(sizes) == 6 + 3 + 5 and max(sizes) == 5  # the big transaction alone exceeds the bound
    assert all(size <= 2 for size in sizes if size != 5)
    (holding,) = [b for b in Block.objects.all() if big[0].pk in b.event_ids]
    assert sorted(holding.event_ids) == [event.pk for event in big]
    assert both_verify()[0] == 0


def test_batches_and_single_ingests_through_the_api_are_sealed_with_their_audit_records(signed_client):
    wallet = WalletFactory()
    items = [
        {"wallet_id": str(wallet.public_id), "event_type": "deposit", "amount": f"{i}.50", "currency": "NGN",
         "provider_event_id": f"hist-batch-{i}", "occurred_at": "2026-11-20T14:02:18Z"}
        for i in range(1, 4)
    ]  # fmt: skip
    assert signed_client.post("/api/v1/events/batch", {"events": items}).status_code == 200
    single = dict(items[0], provider_event_id="hist-single")
    del single["wallet_id"]
    assert signed_client.post(f"/api/v1/wallets/{wallet.public_id}/events/ingest", single).status_code == 201
    history_seal()
    events = set(WalletEvent.objects.values_list("pk", flat=True))
    audits = set(AuditRecord.objects.values_list("pk", flat=True))
    assert len(events) == 4 and len(audits) >= 4  # one audit record per new event, and the API client's
    (block,) = Block.objects.all()
    assert (set(block.event_ids), set(block.audit_ids)) == (events, audits)
    assert both_verify()[0] == 0


def test_a_horizon_below_the_last_block_is_a_wait_not_a_rewind_while_the_counter_is_ahead():
    """Transaction ids are cluster-wide, and the horizon leaves out other databases' transactions
    found in pg_stat_activity, read just after the snapshot. One that ends in between is counted
    as this database's, so the horizon can fall below the last block's bound although nothing
    went back (seen once under five test suites on one server). That is "nothing to seal yet",
    not HistoryRewound, which stopped the sealer: a rewind is a counter below the bound."""
    write_records()
    history_seal()
    other = psycopg.connect(dsn())
    try:
        (running,) = other.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()  # stays open
        # The state the race leaves: a block whose bound is above a transaction still running.
        tamper(
            "INSERT INTO history_block SELECT number + 1, hash, repeat('e', 64), sealed_at, xact_to, %s, %s, "
            "0, 0, records_total, max_event_id, max_audit_id, '{}', '{}', '{}', '' FROM history_block",
            [running + 1, running + 1],
        )
        write_records()
        assert history_seal() is None
    finally:
        other.close()
    block = history_seal()
    assert block is not None and block.number == 3 and block.records == 5
