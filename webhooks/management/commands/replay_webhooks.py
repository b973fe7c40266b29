"""Decide every unmatched webhook delivery again (once its wallet is registered)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from amani.actors import Actor
from webhooks.providers import PROVIDERS
from webhooks.services import webhook_deliveries_replay


class Command(BaseCommand):
    help = (
        "Decide every unmatched provider webhook delivery again, oldest first, exactly as on receipt; print "
        "replayed=N created=N duplicate=N conflict=N unmatched=N invalid=N."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--provider", choices=sorted(PROVIDERS), help="Only this provider's deliveries.")

    def handle(self, *args: Any, **options: Any) -> None:
        summary = webhook_deliveries_replay(actor=Actor.command("replay_webhooks"), provider=options["provider"])
        self.stdout.write(summary.line())
