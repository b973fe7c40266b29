"""`manage.py create_app_role NAME`: the least-privilege role the service connects as."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from amani.database_roles import RoleUnsafe, app_role_grant, app_role_statements


class Command(BaseCommand):
    help = (
        "Create the database role the service connects as (if missing) and set its privileges "
        "in this database: rows read and written, append-only tables read and inserted only, "
        "nothing owned (amani.database_roles). Run it as the tables' owner, after every "
        "`migrate`: new tables get no privileges until it runs. Set a password with psql's "
        "\\password NAME; --sql prints the statements instead of running them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="the role, e.g. amani_app")
        parser.add_argument("--sql", action="store_true", help="print the SQL, run nothing")

    def handle(self, *args: Any, name: str, sql: bool, **options: Any) -> None:
        if sql:
            statements = app_role_statements(role=name, database=connection.settings_dict["NAME"], create=True)
            self.stdout.write(";\n".join(statements) + ";")
            return
        try:
            statements = app_role_grant(role=name)
        except RoleUnsafe as exc:
            raise CommandError(str(exc)) from None
        created = statements[0].startswith("CREATE ROLE")
        self.stdout.write(f"{'created' if created else 'updated'} role {name}: {len(statements)} statements")
