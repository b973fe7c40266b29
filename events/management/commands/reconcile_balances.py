"""List every wallet and currency whose latest provider balance report disagrees with the events."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from amani.money import amount_format
from events.reconciliation import DRIFT, reconciliation_list


class Command(BaseCommand):
    help = (
        "Compare each wallet and currency's latest provider balance report with the balance reconstructed "
        "as of its reported_at; print one line per drift and exit with status 1 when there is any."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        drift = 0
        for item in reconciliation_list(status=DRIFT):
            drift += 1
            currency = item.currency
            ledger = item.difference_ledger
            self.stdout.write(
                f"drift wallet={item.wallet_id} currency={currency} reported_at={item.reported_at.isoformat()} "
                f"available={amount_format(item.reported_available, currency)} "
                f"reconstructed_available={amount_format(item.reconstructed.available, currency)} "
                f"difference_available={amount_format(item.difference_available, currency)} "
                f"difference_ledger={'null' if ledger is None else amount_format(ledger, currency)}"
            )
        self.stdout.write(f"drift={drift}")
        if drift:
            raise CommandError(f"{drift} wallet balance(s) in drift.", returncode=1)
