"""A backfill killed with SIGKILL mid-run, then run again, stores every valid record exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from audit.models import AuditRecord
from events.models import BalanceBucket, WalletEvent
from wallets.tests.factories import WalletFactory

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(settings.BASE_DIR)
RECORDS = 6000
BAD_EVERY = 97  # every 97th line is invalid, every 89th repeats an earlier record


def command_env() -> dict[str, str]:
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = dict(os.environ, DATABASE_URL=url, DJANGO_SETTINGS_MODULE="amani.settings.test")
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = db["PASSWORD"]
    return env


def backfill(path: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "backfill_wallet_events", str(path), "--batch-size", "200", *args],
        cwd=ROOT,
        env=command_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigkill_mid_run_then_rerun_stores_each_valid_record_once(tmp_path):
    wallets = [WalletFactory() for _ in range(4)]
    lines, valid = [], set()
    for n in range(RECORDS):
        if n % BAD_EVERY == 5:
            lines.append(json.dumps({"wallet_id": str(wallets[0].public_id), "amount": "zero"}))
            continue
        if n % 89 == 7:
            lines.append(lines[n - 1])  # an in-file duplicate of the line before
            continue
        record = {
            "wallet_id": str(wallets[n % 4].public_id),
            "event_type": "deposit" if n % 3 else "fee",
            "amount": f"{1 + n % 50}.25",
            "currency": "NGN",
            "provider_event_id": f"kill_{n}",
            "occurred_at": f"2026-10-{1 + n % 28:02d}T10:{n % 60:02d}:00Z",
        }
        lines.append(json.dumps(record))
        valid.add(f"kill_{n}")
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(lines) + "\n")
    invalid = sum(1 for n in range(RECORDS) if n % BAD_EVERY == 5)
    repeated = RECORDS - invalid - len(valid)

    process = backfill(path)
    deadline = time.monotonic() + 120
    while WalletEvent.objects.count() < 600:  # a few batches committed
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the backfill made no progress"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    stored_before_rerun = WalletEvent.objects.count()
    assert 0 < stored_before_rerun < len(valid), "killed too late to test resuming"

    rerun = backfill(path)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 1, err  # the invalid lines
    created = len(valid) - stored_before_rerun
    assert out.strip().splitlines()[-1] == (
        f"read={RECORDS} created={created} duplicate={stored_before_rerun + repeated} conflict=0 invalid={invalid}"
    )
    assert set(WalletEvent.objects.values_list("provider_event_id", flat=True)) == valid
    assert WalletEvent.objects.count() == len(valid)
    # The buckets count every stored event once: the killed batch's upserts rolled back with its events.
    assert sum(BalanceBucket.objects.values_list("event_count", flat=True)) == len(valid)
    audits = AuditRecord.objects.filter(action="backfill_events_batch")
    assert sum(a.details["created"] for a in audits) == len(valid)

    final = backfill(path)
    out, _ = final.communicate(timeout=300)
    assert out.strip().splitlines()[-1] == (
        f"read={RECORDS} created=0 duplicate={len(valid) + repeated} conflict=0 invalid={invalid}"
    )
