"""manage.py seal_history: once, in a loop beside writers until SIGTERM, and refusing a rewound database."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from history.models import Block
from history.tests.support import dsn, tamper, write_records

pytestmark = pytest.mark.django_db(transaction=True)
REPO = Path(__file__).resolve().parents[2]


def seal(*args: str) -> str:
    out = StringIO()
    call_command("seal_history", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_seal_once_prints_the_block_then_nothing():
    write_records(events=2, audits=1)
    first = seal()
    block = Block.objects.get()
    assert first == f"block=1 records=3 total=3 hash={block.hash}\n"
    assert seal() == "nothing to seal\n"


@pytest.mark.parametrize("every", ["0", "-1", "3601"])
def test_an_unusable_interval_is_exit_2(every):
    with pytest.raises(CommandError) as raised:
        seal("--every", every)
    assert raised.value.returncode == 2


def test_a_database_whose_transaction_ids_went_back_is_refused():
    write_records()
    seal()
    tamper("INSERT INTO history_block SELECT number + 1, hash, repeat('f', 64), sealed_at, xact_to, 1e15, 1e15, "
           "0, 0, records_total, max_event_id, max_audit_id, '{}', '{}', '{}', '' FROM history_block")  # fmt: skip
    write_records()
    with pytest.raises(CommandError, match="logical restore") as raised:
        seal()
    assert raised.value.returncode == 1


def read_line(process: subprocess.Popen, timeout: float) -> str:
    """The process's next stdout line, waiting at most `timeout` seconds."""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if selector.select(timeout=deadline - time.monotonic()):
                return process.stdout.readline()
    raise AssertionError(f"no output within {timeout} s")


def test_the_loop_seals_new_records_as_they_commit_and_stops_on_sigterm():
    env = {
        **os.environ,
        "DATABASE_URL": dsn(),
        "DJANGO_SETTINGS_MODULE": "amani.settings.base",
        "SECRET_KEY": settings.SECRET_KEY,
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "seal_history", "--every", "0.2"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        write_records(events=2, audits=0)
        assert read_line(process, 30).startswith("block=1 records=2 total=2 ")
        write_records(events=1, audits=1)
        assert read_line(process, 30).startswith("block=2 records=2 total=4 ")
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
