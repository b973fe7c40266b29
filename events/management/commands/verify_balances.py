"""Rebuild every balance bucket from the first event and report each one the fast path got wrong."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from amani.actors import Actor
from events.balances import BucketMismatch, balance_buckets_repair, balance_buckets_verify
from wallets.models import Wallet


def _describe(values: tuple | None) -> str:
    if values is None:
        return "missing"
    ledger, held, count, last_event_at = values
    return f"ledger={ledger} held={held} event_count={count} last_event_at={last_event_at.isoformat()}"


class Command(BaseCommand):
    help = (
        "Recompute the per-day balance buckets from the wallet events themselves and report every "
        "bucket that differs (exit status 1 when any does). --repair rewrites them in one transaction."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--wallet", help="Only this wallet (its public UUID).")
        parser.add_argument("--repair", action="store_true", help="Rewrite the differing buckets from the events.")

    def handle(self, *args: Any, **options: Any) -> None:
        wallet = None
        if options["wallet"] is not None:
            try:
                wallet = Wallet.objects.get(public_id=uuid.UUID(options["wallet"]))
            except (ValueError, Wallet.DoesNotExist):
                raise CommandError(f"No wallet has the id {options['wallet']!r}.", returncode=2) from None

        if options["repair"]:
            mismatches = balance_buckets_repair(wallet=wallet, actor=Actor.command("verify_balances"))
        else:
            mismatches = balance_buckets_verify(wallet=wallet)
        count = 0
        for mismatch in mismatches:
            count += 1
            self.stdout.write(self._line(mismatch))
        if options["repair"]:
            self.stdout.write(f"repaired={count}")
            return
        self.stdout.write(f"mismatches={count}")
        if count:
            raise CommandError(f"{count} balance bucket(s) differ from their events.", returncode=1)

    @staticmethod
    def _line(mismatch: BucketMismatch) -> str:
        return (
            f"mismatch wallet={mismatch.wallet_id} currency={mismatch.currency} day={mismatch.day.isoformat()} "
            f"expected: {_describe(mismatch.expected)} | stored: {_describe(mismatch.stored)}"
        )
