"""manage.py reconcile_balances: every drift listed, exit status 1 when there is any."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from events.tests.factories import record, report
from wallets.tests.factories import WalletFactory


def run() -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("reconcile_balances", stdout=out, stderr=StringIO())
    except CommandError as exc:
        return exc.returncode, out.getvalue()
    return 0, out.getvalue()


@pytest.fixture
def history(wallet) -> None:
    record(wallet, "deposit", "1500.00", "NGN", "2026-11-01T08:00:00Z")
    record(wallet, "hold", "200.00", "NGN", "2026-11-01T09:00:00Z")
    record(wallet, "deposit", "5.000", "KWD", "2026-11-01T09:00:00Z")


def test_no_reports_exit_0(wallet, history):
    assert run() == (0, "drift=0\n")


def test_all_matched_exit_0(wallet, history):
    report(wallet, "1300.00", "1500.00", reported_at="2026-11-01T10:00:00Z")
    report(wallet, "5.000", reported_at="2026-11-01T10:00:00Z", currency="KWD")
    assert run() == (0, "drift=0\n")


def test_each_drift_is_one_line_and_exit_1(wallet, history):
    other = WalletFactory()
    report(wallet, "1300.00", "1500.00", reported_at="2026-11-01T10:00:00Z")  # matched
    report(wallet, "4.500", "5.250", reported_at="2026-11-01T10:00:00Z", currency="KWD")
    report(other, "-2.00", reported_at="2026-11-01T10:00:00Z")
    code, out = run()
    assert code == 1
    lines = out.splitlines()
    assert lines[-1] == "drift=2"
    assert sorted(lines[:-1]) == sorted(
        [
            f"drift wallet={wallet.public_id} currency=KWD reported_at=2026-11-01T10:00:00+00:00 "
            "available=4.500 reconstructed_available=5.000 difference_available=-0.500 difference_ledger=0.250",
            f"drift wallet={other.public_id} currency=NGN reported_at=2026-11-01T10:00:00+00:00 "
            "available=-2.00 reconstructed_available=0.00 difference_available=-2.00 difference_ledger=null",
        ]
    )


def test_a_newer_matching_report_clears_the_drift(wallet, history):
    report(wallet, "1.00", reported_at="2026-11-01T10:00:00Z")
    assert run()[0] == 1
    report(wallet, "1300.00", reported_at="2026-11-01T11:00:00Z")
    assert run() == (0, "drift=0\n")
