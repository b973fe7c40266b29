"""manage.py verify_balances: the buckets against a recomputation from the first event."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from audit.models import AuditRecord
from events.models import BalanceBucket
from events.tests.factories import record
from wallets.tests.factories import WalletFactory


@pytest.fixture
def wallets(db):
    first = WalletFactory()
    record(first, "deposit", "1500.00", "NGN", "2026-11-01T08:00:00Z")
    record(first, "hold", "200.00", "NGN", "2026-11-01T09:00:00Z")
    record(first, "fee", "1.500", "KWD", "2026-11-02T09:00:00Z")
    second = WalletFactory()
    record(second, "transfer_in", "10.00", "NGN", "2026-11-01T08:00:00Z")
    return first, second


def run(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("verify_balances", *args, stdout=out, stderr=StringIO())
    except CommandError as exc:
        return exc.returncode, out.getvalue()
    return 0, out.getvalue()


def corrupt(wallet, currency: str, day: str, sql_set: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE events_balancebucket SET {sql_set} WHERE wallet_id = %s AND currency = %s AND day = %s",  # noqa: S608
            [wallet.pk, currency, day],
        )


def test_clean_buckets_exit_0(wallets):
    assert run() == (0, "mismatches=0\n")


def test_corrupted_bucket_is_reported_with_exit_1(wallets):
    first, _ = wallets
    corrupt(first, "NGN", "2026-11-01", "ledger = ledger + 0.01")
    code, out = run()
    assert code == 1
    lines = out.splitlines()
    assert lines[-1] == "mismatches=1"
    assert lines[0] == (
        f"mismatch wallet={first.public_id} currency=NGN day=2026-11-01 "
        "expected: ledger=1500.0000 held=200.0000 event_count=2 last_event_at=2026-11-01T09:00:00+00:00 | "
        "stored: ledger=1500.0100 held=200.0000 event_count=2 last_event_at=2026-11-01T09:00:00+00:00"
    )


def test_missing_and_orphan_buckets_are_reported(wallets):
    first, second = wallets
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM events_balancebucket WHERE wallet_id = %s", [second.pk])
    BalanceBucket.objects.create(
        wallet=first,
        currency="NGN",
        day=dt.date(2026, 10, 1),
        ledger=Decimal(5),
        event_count=1,
        last_event_at=dt.datetime(2026, 10, 1, tzinfo=dt.UTC),
    )
    code, out = run()
    assert code == 1
    assert "mismatches=2" in out
    assert f"wallet={second.public_id} currency=NGN day=2026-11-01 expected: ledger=10.0000" in out
    assert "| stored: missing" in out
    assert f"wallet={first.public_id} currency=NGN day=2026-10-01 expected: missing | stored: ledger=5.0000" in out


def test_wallet_option_limits_the_check(wallets):
    first, second = wallets
    corrupt(second, "NGN", "2026-11-01", "event_count = 7")
    assert run("--wallet", str(first.public_id)) == (0, "mismatches=0\n")
    code, out = run("--wallet", str(second.public_id))
    assert (code, out.splitlines()[-1]) == (1, "mismatches=1")


def test_unknown_wallet_is_exit_2(wallets):
    assert run("--wallet", "not-a-uuid")[0] == 2
    assert run("--wallet", "00000000-0000-0000-0000-000000000000")[0] == 2


def test_repair_rewrites_the_buckets_and_is_audited(wallets):
    first, second = wallets
    corrupt(first, "KWD", "2026-11-02", "held = 3, last_event_at = '2026-11-02T23:00:00Z'")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM events_balancebucket WHERE wallet_id = %s", [second.pk])
    code, out = run("--repair")
    assert (code, out.splitlines()[-1]) == (0, "repaired=2")
    assert run() == (0, "mismatches=0\n")
    kwd = BalanceBucket.objects.get(wallet=first, currency="KWD")
    assert (kwd.ledger, kwd.held, kwd.event_count) == (Decimal("-1.500"), Decimal(0), 1)
    assert AuditRecord.objects.get(action="repair_balance_buckets").details["repaired"] == 2
