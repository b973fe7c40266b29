"""`manage.py verify_history [--head HASH]`: recompute every block from the records themselves."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from history.services import history_verify


class Command(BaseCommand):
    help = (
        "Recompute every block of the history from the events and audit records and check the chain. "
        "Prints blocks=N records=N head=<hash> and exits 0, or names the first block and record that do "
        "not match (changed, missing, unsealed, block-changed) and exits 1 - also when --head is not the "
        "hash of a block of the chain. scripts/verify_history.py does the same without Django."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--head", metavar="HASH", help="A head published earlier: it must be a block of the chain.")

    def handle(self, *args: Any, **options: Any) -> None:
        head = options["head"]
        result = history_verify(expected_head=head.strip().lower() if head is not None else None)
        if result.problem is None:
            self.stdout.write(result.summary())
            return
        self.stdout.write(result.problem.line())
        raise CommandError(f"the history does not match after {result.summary()}", returncode=1)
