"""The service's least-privilege database role (issue 17; docs/security.md).

Migrations run as the owner of the tables. The service (gunicorn, and every management
command but `migrate` and `create_app_role`) connects as a role that owns nothing: it
reads and writes rows, and on the append-only tables it may only read and insert. Not
owning a table, it cannot TRUNCATE it, ALTER it (DISABLE TRIGGER), drop it, or add a
trigger; not a superuser, it cannot `SET session_replication_role = replica` either.

Every table of an installed model gets SELECT, INSERT, UPDATE and DELETE (wallets are
deactivated, balance buckets upserted and repaired, API keys stamped and revoked, nonces
pruned, admin sessions saved) except the append-only ones below, which get SELECT and
INSERT only: adding a table there is the whole change. django_migrations is read only.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction

# Written once, never changed: a new append-only model is one more line here.
APPEND_ONLY_MODELS = (
    "events.WalletEvent",
    "audit.AuditRecord",
    "history.Block",
)
READ_ONLY_TABLES = ("django_migrations",)
ROLE_ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"


class RoleUnsafe(Exception):
    """The named role exists with powers that would defeat the point (superuser, owner...)."""


def _tables() -> tuple[list[str], list[str]]:
    """(append-only tables, every other table of an installed model), sorted."""
    append_only = {apps.get_model(label)._meta.db_table for label in APPEND_ONLY_MODELS}
    tables = {
        model._meta.db_table
        for model in apps.get_models(include_auto_created=True)
        if model._meta.managed and not model._meta.proxy
    }
    return sorted(append_only), sorted(tables - append_only)


def app_role_statements(*, role: str, database: str, create: bool) -> list[str]:
    """The SQL that creates `role` (when `create`) and sets its privileges in `database` to
    exactly the ones above; run by the tables' owner, any number of times."""
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    name, db = quote(role), quote(database)
    append_only, read_write = _tables()
    statements = [f"CREATE ROLE {name} {ROLE_ATTRIBUTES}"] if create else []
    statements += [
        f"GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {name}",  # backfills stage rows in temp tables
        f"REVOKE CREATE ON SCHEMA public FROM {name}",
        f"GRANT USAGE ON SCHEMA public TO {name}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {name}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {name}",
    ]
    statements += [f"GRANT SELECT, INSERT, UPDATE, DELETE ON {quote(table)} TO {name}" for table in read_write]
    statements += [f"GRANT SELECT, INSERT ON {quote(table)} TO {name}" for table in append_only]
    statements += [f"GRANT SELECT ON {quote(table)} TO {name}" for table in READ_ONLY_TABLES]
    return statements


def app_role_grant(*, role: str, using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Create `role` if it does not exist and (re)apply its privileges; the statements run.

    Refuses (RoleUnsafe) a role that is a superuser, may bypass row security, or is the
    connecting owner or a member of it: it would hold the owner's powers all the same.
    """
    connection = connections[using]
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolsuper OR rolbypassrls OR pg_has_role(%s, current_user, 'MEMBER') "
            "FROM pg_roles WHERE rolname = %s",
            [role, role],
        )
        found = cursor.fetchone()
        if found is not None and found[0]:
            raise RoleUnsafe(
                f"Role {role!r} is a superuser, bypasses row security, or holds the owner's privileges: "
                "the service must connect as a role that owns nothing."
            )
        statements = app_role_statements(role=role, database=connection.settings_dict["NAME"], create=found is None)
        for statement in statements:
            cursor.execute(statement)
    return statements


def app_role_after_migrate(*, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    """post_migrate: re-apply settings.DATABASE_APP_ROLE's privileges (new tables included)."""
    if settings.DATABASE_APP_ROLE:
        app_role_grant(role=settings.DATABASE_APP_ROLE, using=using)
