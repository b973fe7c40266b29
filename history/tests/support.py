"""Helpers for the history tests: committed writes, tampering as a superuser would, both verifiers."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from contextlib import redirect_stdout
from functools import cache
from io import StringIO
from pathlib import Path
from types import ModuleType

from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from audit.tests.factories import AuditRecordFactory
from events.tests.factories import WalletEventFactory
from testing import roles

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "verify_history.py"


def dsn() -> str:
    params = connection.settings_dict
    return f"postgresql://{params['USER']}@{params['HOST'] or '127.0.0.1'}:{params['PORT'] or 5432}/{params['NAME']}"


def write_records(events: int = 3, audits: int = 2) -> tuple[list, list]:
    return WalletEventFactory.create_batch(events), AuditRecordFactory.create_batch(audits)


def tamper(sql: str, params: list | None = None) -> None:
    """Run SQL with every trigger off, as a superuser with a psql prompt could (transactional tests only)."""
    with roles.database_owner(), connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute(sql, params)
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")


def command_verify(*args: str) -> tuple[int, str]:
    """`manage.py verify_history`: (exit status, stdout)."""
    out = StringIO()
    try:
        call_command("verify_history", *args, stdout=out, stderr=StringIO())
    except CommandError as exc:
        return exc.returncode, out.getvalue().strip()
    return 0, out.getvalue().strip()


@cache
def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_history_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def script_verify(*args: str) -> tuple[int, str]:
    """scripts/verify_history.py's main() (in this process: test_standalone runs it in its own)."""
    out = StringIO()
    with redirect_stdout(out):
        status = _script().main([dsn(), *args])
    return status, out.getvalue().strip()


def script_process(*args: str) -> subprocess.CompletedProcess:
    """The script in a process of its own where importing Django fails."""
    runner = (
        "import runpy, sys; sys.modules['django'] = None; sys.argv = sys.argv[1:]; "
        "runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    return subprocess.run(
        [sys.executable, "-c", runner, str(SCRIPT), dsn(), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd="/",
    )


def both_verify(*args: str) -> tuple[int, str]:
    """Both verifiers, which must give the same answer; that answer."""
    command, script = command_verify(*args), script_verify(*args)
    assert command == script, f"verify_history said {command}, scripts/verify_history.py said {script}"
    return command
