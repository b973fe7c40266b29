"""The wallets and audit migrations run forward, back to zero, and forward again.

On a scratch database of its own, through manage.py in a subprocess, so the shared
test database and other tests are never migrated under their feet.
"""

import os
import subprocess
import sys

import psycopg
import pytest
from django.conf import settings

from testing import roles

DB = settings.DATABASES["default"]
SCRATCH = f"{DB['TEST']['NAME']}_migrations"


def connect(dbname: str) -> psycopg.Connection:
    return psycopg.connect(
        dbname=dbname,
        user=roles.owner(),
        password=DB["PASSWORD"] or None,
        host=DB["HOST"] or "127.0.0.1",
        port=DB["PORT"] or 5432,
        autocommit=True,
    )


def manage(*args: str) -> str:
    url = "postgres://{}:{}@{}:{}/{}".format(
        roles.owner(), DB["PASSWORD"] or "", DB["HOST"] or "127.0.0.1", DB["PORT"] or 5432, SCRATCH
    )
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "amani.settings.test"}
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def query(sql: str) -> list[tuple]:
    with connect(SCRATCH) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture
def scratch_database():
    with connect("postgres") as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{SCRATCH}"')
    yield
    with connect("postgres") as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)')


def state() -> dict:
    return {
        "tables": {row[0] for row in query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")},
        "trigger": query("SELECT tgname FROM pg_trigger WHERE tgname = 'audit_auditrecord_append_only'"),
        "support": sorted(
            row[0]
            for row in query(
                "SELECT p.codename FROM auth_group g JOIN auth_group_permissions gp ON gp.group_id = g.id "
                "JOIN auth_permission p ON p.id = gp.permission_id WHERE g.name = 'Support'"
            )
        ),
    }


def test_migrations_reverse_to_zero_and_apply_again(scratch_database):
    manage("migrate", "--noinput")
    applied = state()
    assert {"wallets_wallet", "audit_auditrecord"} <= applied["tables"]
    assert applied["trigger"]
    assert applied["support"] == [
        "view_auditrecord",
        "view_providerbalancereport",
        "view_wallet",
        "view_walletevent",
        "view_webhookdelivery",
    ]

    manage("migrate", "audit", "zero", "--noinput")
    manage("migrate", "wallets", "zero", "--noinput")
    reverted = state()
    assert "audit_auditrecord" not in reverted["tables"]
    assert "wallets_wallet" not in reverted["tables"]
    assert reverted["trigger"] == []
    assert reverted["support"] == []
    assert query("SELECT count(*) FROM pg_proc WHERE proname = 'audit_auditrecord_append_only'") == [(0,)]

    manage("migrate", "--noinput")
    assert state() == applied
    # Nothing left for makemigrations to write: models and migrations agree.
    manage("makemigrations", "wallets", "audit", "--check", "--dry-run")
