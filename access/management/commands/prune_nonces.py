"""`manage.py prune_nonces`: delete nonces too old to be replayed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from access.services import nonce_prune


class Command(BaseCommand):
    help = (
        "Delete request nonces older than twice the clock-skew window. The API already does "
        "this about once a minute per server process; run it from cron after quiet periods."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        deleted = nonce_prune()
        self.stdout.write(f"deleted={deleted}")
