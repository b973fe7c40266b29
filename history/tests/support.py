"""Helpers for the history tests: committed writes, tampering as a superuser would, both verifiers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from audit.tests.factories import AuditRecordFactory
from events.tests.factories import WalletEventFactory

REPO = Path(__file__).resolve().parents[2]


def dsn() -> str:
    params = connection.settings_dict
    return f"postgresql://{params['USER']}@{params['HOST'] or '127.0.0.1'}:{params['PORT'] or 5432}/{params['NAME']}"


def write_records(events: int = 3, audits: int = 2) -> tuple[list, list]:
    return WalletEventFactory.create_batch(events), AuditRecordFactory.create_batch(audits)


def tamper(sql: str, params: list | None = None) -> None:
    """Run SQL with every trigger off, as a superuser with a psql prompt could."""
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute(sql, params)
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")


def command_verify(*args: str) -> tuple[int, str]:
    """`manage.py verify_history`: (exit status, stdout)."""
    from io import StringIO

    out = StringIO()
    try:
        call_command("verify_history", *args, stdout=out, stderr=StringIO())
    except CommandError as exc:
        return exc.returncode, out.getvalue().strip()
    return 0, out.getvalue().strip()


def script_verify(*args: str) -> tuple[int, str]:
    """scripts/verify_history.py, in its own process: (exit status, stdout)."""
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "verify_history.py"), dsn(), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout.strip()


def both_verify(*args: str) -> tuple[int, str]:
    """Both verifiers, which must give the same answer; that answer."""
    command, script = command_verify(*args), script_verify(*args)
    assert command == script, f"verify_history said {command}, scripts/verify_history.py said {script}"
    return command
