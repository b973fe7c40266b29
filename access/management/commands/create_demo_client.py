"""`manage.py create_demo_client`: the local demo caller that `make run` prints."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from access.models import ApiClient, Scope
from access.services import api_client_create, api_key_create, api_key_revoke
from amani import signing
from amani.actors import Actor

DEMO_NAME = "demo"


class Command(BaseCommand):
    help = (
        "Create (or reuse) the 'demo' API client with every scope, give it a fresh key "
        "(revoking its earlier ones, since a secret is shown only once) and print the key "
        "id, the secret and signed example requests. For local development only."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="Where the server listens.")
        parser.add_argument("--force", action="store_true", help="Run even with DEBUG off.")

    def handle(self, *args: Any, base_url: str, force: bool, **options: Any) -> None:
        if not settings.DEBUG and not force:
            raise CommandError("create_demo_client is for local development (DEBUG=true); pass --force to run it.")
        actor = Actor.command("create_demo_client")
        with transaction.atomic():
            client = ApiClient.objects.select_for_update().filter(name=DEMO_NAME).first()
            if client is None:
                client, issued = api_client_create(name=DEMO_NAME, scopes=list(Scope.values), actor=actor)
            else:
                for key in client.keys.filter(revoked_at__isnull=True):
                    api_key_revoke(key=key, actor=actor)
                issued = api_key_create(client=client, actor=actor)

        base_url = base_url.rstrip("/")
        path = "/api/v1/wallets"
        header = signing.authorization_header(
            key_id=issued.key_id, secret=issued.secret, method="GET", path=urlsplit(base_url).path + path
        )
        self.stdout.write(
            f"""
Demo API client {client.name!r} (scopes: {", ".join(client.scopes)})
  key id: {issued.key_id}
  secret: {issued.secret}
The secret is shown only now; the next `make run` revokes this key and issues a new one.

One signed request with curl (single use: the nonce is spent once it is accepted, and
the signature is valid for {settings.HMAC_CLOCK_SKEW_SECONDS} seconds):

  curl -s -H '{"Authorization: " + header}' {base_url}{path}

Any number of requests from Python (run in this folder, e.g. with .venv/bin/python):

  import requests
  from amani.signing import HmacAuth
  auth = HmacAuth("{issued.key_id}", "{issued.secret}")
  print(requests.get("{base_url}{path}", auth=auth).json())

API docs: {base_url}/api/v1/docs
"""
        )
