"""The suite's connections are the service's role (create_app_role), and it cannot tamper:
no UPDATE, DELETE or TRUNCATE on an append-only table, no trigger switched off (issue 17)."""

from __future__ import annotations

import io

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from amani.database_roles import APPEND_ONLY_MODELS
from audit.tests.factories import AuditRecordFactory
from testing import roles

pytestmark = pytest.mark.django_db

APPEND_ONLY_TABLES = [apps.get_model(label)._meta.db_table for label in APPEND_ONLY_MODELS]
PRIMARY_KEYS = {
    apps.get_model(label)._meta.db_table: apps.get_model(label)._meta.pk.column for label in APPEND_ONLY_MODELS
}
REFUSED = r"permission denied|must be owner"


def refused(sql: str) -> None:
    with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)


def test_the_suite_connects_as_a_role_that_owns_nothing_and_is_no_superuser():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, session_user, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, "
            "(SELECT count(*) FROM pg_class WHERE relowner = pg_roles.oid) FROM pg_roles WHERE rolname = current_user"
        )
        assert cursor.fetchone() == (roles.app_role(), roles.app_role(), False, False, False, False, 0)


@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {table} SET {pk} = {pk}",
        "DELETE FROM {table}",
        "TRUNCATE {table}",
        "ALTER TABLE {table} DISABLE TRIGGER ALL",
        "ALTER TABLE {table} DISABLE TRIGGER USER",
        "DROP TABLE {table}",
        "CREATE TRIGGER sneaky BEFORE INSERT ON {table} FOR EACH ROW "
        "EXECUTE FUNCTION suppress_redundant_updates_trigger()",
        "SELECT {pk} FROM {table} FOR UPDATE",
    ],
)
def test_each_forbidden_statement_on_an_append_only_table_fails(table, statement):
    AuditRecordFactory()
    refused(statement.format(table=table, pk=PRIMARY_KEYS[table]))


def test_the_audit_trigger_cannot_be_dropped_or_replication_role_switched():
    refused("DROP TRIGGER audit_auditrecord_append_only ON audit_auditrecord")
    refused("CREATE OR REPLACE FUNCTION audit_auditrecord_append_only() RETURNS trigger LANGUAGE sql AS 'SELECT NULL'")
    refused("SET session_replication_role = replica")
    refused("CREATE TABLE public.shadow (id int)")


def test_rows_the_service_changes_stay_writable():
    """Privileges are checked when a statement is planned: `WHERE false` proves them without a row."""
    updates = [("wallets_wallet", "is_active"), ("events_balancebucket", "ledger"), ("amani_apikey", "last_used_at")]
    updates += [("amani_apiclient", "scopes"), ("django_session", "expire_date"), ("auth_user", "last_login")]
    with transaction.atomic(), connection.cursor() as cursor:
        for table, column in updates:
            cursor.execute(f"UPDATE {table} SET {column} = {column} WHERE false")  # noqa: S608
        for table in ("amani_apinonce", "events_balancebucket", "django_session"):
            cursor.execute(f"DELETE FROM {table} WHERE false")  # noqa: S608


def test_create_app_role_refuses_a_superuser_and_prints_its_sql():
    with pytest.raises(CommandError, match="superuser"):
        call_command("create_app_role", "postgres")
    out = io.StringIO()
    call_command("create_app_role", "amani_app", "--sql", stdout=out)
    sql = out.getvalue()
    assert 'CREATE ROLE "amani_app" LOGIN NOSUPERUSER' in sql
    for table in APPEND_ONLY_TABLES:
        assert f'GRANT SELECT, INSERT ON "{table}" TO "amani_app";' in sql
        assert f'UPDATE, DELETE ON "{table}"' not in sql
    assert 'GRANT SELECT, INSERT, UPDATE, DELETE ON "wallets_wallet" TO "amani_app";' in sql
    assert "TRUNCATE" not in sql


@pytest.mark.django_db(transaction=True)
def test_migrate_reapplies_the_roles_privileges_when_database_app_role_is_set(settings):
    """A table migrated in after create_app_role ran gets its privileges from migrate itself."""
    role = connection.ops.quote_name(roles.app_role())
    with roles.database_owner(), connection.cursor() as cursor:
        cursor.execute(f"REVOKE ALL ON wallets_wallet FROM {role}")  # as a brand-new table would be
    refused("SELECT count(*) FROM wallets_wallet")
    settings.DATABASE_APP_ROLE = roles.app_role()
    with roles.database_owner():
        call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM wallets_wallet")
        assert cursor.fetchone() == (0,)
