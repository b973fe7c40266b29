"""`manage.py create_api_client NAME --scopes a,b [--json]`: a client with one active key."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from access.models import Scope
from access.services import api_client_create
from amani.actors import Actor


class Command(BaseCommand):
    help = (
        "Create an API client with one active signing key and print the key id and secret. "
        "The secret is shown only this once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="Unique client name, e.g. the calling service.")
        parser.add_argument(
            "--scopes",
            required=True,
            help=f"Comma-separated scopes, a subset of: {','.join(Scope.values)}",
        )
        parser.add_argument(
            "--json",
            dest="as_json",
            action="store_true",
            help='Print only {"key_id", "secret", "scopes"} as JSON on stdout.',
        )

    def handle(self, *args: Any, name: str, scopes: str, as_json: bool, **options: Any) -> None:
        wanted = [scope.strip() for scope in scopes.split(",") if scope.strip()]
        try:
            client, issued = api_client_create(name=name, scopes=wanted, actor=Actor.command("create_api_client"))
        except ValidationError as exc:
            problems = (message for messages in exc.message_dict.values() for message in messages)
            raise CommandError("; ".join(problems)) from None
        if as_json:
            self.stdout.write(json.dumps({"key_id": issued.key_id, "secret": issued.secret, "scopes": client.scopes}))
            return
        self.stdout.write(f"Created API client {client.name!r} with scopes {', '.join(client.scopes)}.")
        self.stdout.write(f"key id: {issued.key_id}")
        self.stdout.write(f"secret: {issued.secret}")
        self.stdout.write(self.style.WARNING("Store the secret now: it is encrypted at rest and never shown again."))
