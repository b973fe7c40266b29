"""`manage.py revoke_api_key KEY_ID`: revoke one signing key at once (an incident does not wait)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from access.models import ApiKey
from access.services import api_key_revoke
from amani.actors import Actor

EXIT_NO_SUCH_KEY = 2


class Command(BaseCommand):
    help = (
        "Revoke an API key. From the command's exit every server process answers its requests "
        "401 revoked_key: keys are read from the database on every request, never cached. "
        "Exit 0 (also when it was already revoked, with a notice), 2 when no key has this id."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key_id", help="The key id, e.g. ak_0123456789abcdef01234567.")

    def handle(self, *args: Any, key_id: str, **options: Any) -> None:
        key = ApiKey.objects.select_related("client").filter(key_id=key_id).first()
        if key is None:
            self.stderr.write(f"No API key has the id {key_id!r}.")
            raise SystemExit(EXIT_NO_SUCH_KEY)
        if key.revoked_at is not None:
            self.stdout.write(self.style.WARNING(f"{key_id} was already revoked at {key.revoked_at.isoformat()}."))
            return
        key = api_key_revoke(key=key, actor=Actor.command("revoke_api_key"))
        self.stdout.write(f"Revoked {key_id} of client {key.client.name!r} at {key.revoked_at.isoformat()}.")
