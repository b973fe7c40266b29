"""Import wallet registry rows (JSONL or CSV) with the registry's own rules, resumably.

Each row is parsed by the API's serializer and registered by `wallet_register`, so a
row is decided (and counted in the registration metrics) exactly as `POST /api/v1/wallets`
with its `Idempotency-Key` would be:
created, a replay (`duplicate`), `wallet_claimed` or `idempotency_key_reused`
(`conflict`), or `invalid`. Rows commit in batches, each with one audit record naming
the file, its SHA-256 and the line range. Killed at any moment and run again, the
committed batches come back as duplicates and the rest are created.
"""

from __future__ import annotations

import contextlib
from typing import Any

from django.core.management.base import CommandParser
from django.db import transaction

from amani import metrics
from amani.actors import Actor
from amani.api.idempotency import IDEMPOTENCY_KEY_MESSAGE, idempotency_key_valid
from amani.backfill import FORMATS, BackfillCommand, Counts, source_open, source_records
from amani.errors import DomainError
from audit.models import AuditAction, AuditResource
from audit.services import audit_record
from wallets.api.serializers import WalletRegisterSerializer
from wallets.services import wallet_register

CSV_COLUMNS = frozenset(
    {"user_id", "provider", "provider_account_id", "provider_customer_id", "metadata", "idempotency_key"}
)
CSV_REQUIRED = ("user_id", "provider", "provider_account_id")
DEFAULT_BATCH_SIZE = 500
MAX_BATCH_SIZE = 10_000


def _fields_message(errors: dict[str, Any]) -> str:
    parts = []
    for name, messages in errors.items():
        text = " ".join(str(m) for m in messages) if isinstance(messages, list) else str(messages)
        parts.append(f"{name}: {text}")
    return "; ".join(parts)


class Command(BackfillCommand):
    max_batch_size = MAX_BATCH_SIZE
    audit_action = AuditAction.BACKFILL_WALLETS_BATCH
    audit_resource_type = AuditResource.WALLET_BACKFILL
    audit_record = staticmethod(audit_record)
    help = (
        "Register wallets from a JSONL or CSV file ('-' for standard input) with the registry's rules "
        "(fields user_id, provider, provider_account_id, provider_customer_id, metadata, idempotency_key). "
        "Safe to rerun. Rejected rows go to stderr with their line numbers; one summary line on stdout; "
        "exit 1 when any row was conflicting or invalid, 2 on unusable arguments or input."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="Path of the file, or - for standard input.")
        parser.add_argument("--format", choices=FORMATS, help="jsonl or csv; inferred from the file extension.")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help=f"Rows per transaction (1-{MAX_BATCH_SIZE}, default {DEFAULT_BATCH_SIZE}).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Decide and count every row, then roll back.")

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size = options["batch_size"]
        self.batch_size_check(batch_size)
        self.dry_run = options["dry_run"]
        self.actor = Actor.command("backfill_wallets")
        self.source = source_open(options["file"], options["format"])
        self.progress_start(self.source.lines)
        total = Counts()
        try:
            # A dry run decides every row in one transaction (so repeats inside the file are seen), then rolls
            # back, and counts nothing.
            with (
                transaction.atomic() if self.dry_run else contextlib.nullcontext(),
                metrics.outcomes_uncounted() if self.dry_run else contextlib.nullcontext(),
            ):
                batch: list[tuple[int, Any]] = []
                records = source_records(
                    self.source, columns=CSV_COLUMNS, required=CSV_REQUIRED, progress=self.bar.update
                )
                for record in records:
                    batch.append(record)
                    if len(batch) >= batch_size:
                        total.add(self._batch(batch))
                        batch = []
                if batch:
                    total.add(self._batch(batch))
                if self.dry_run:
                    transaction.set_rollback(True)
        finally:
            self.bar.close()
            self.source.close()
        self.finish(total, "{count} row(s) were not registered (see stderr).")

    # Deciding --------------------------------------------------------------

    def _decide(self, data: Any) -> tuple[str, str | None]:
        """(status, reason) for one row, registering it when it is new."""
        if isinstance(data, str):
            return "invalid", data
        serializer = WalletRegisterSerializer(data=data)
        errors = {} if serializer.is_valid() else dict(serializer.errors)
        idempotency_key = data.get("idempotency_key")
        if idempotency_key is not None and not idempotency_key_valid(idempotency_key):
            errors["idempotency_key"] = [IDEMPOTENCY_KEY_MESSAGE]
        if errors:
            return "invalid", f"validation_error: {_fields_message(errors)}"
        try:
            registration = wallet_register(
                **serializer.validated_data, idempotency_key=idempotency_key, actor=self.actor
            )
        except DomainError as exc:
            return "conflict", f"{exc.code}: {exc.message}"
        if registration.created:
            return "created", None
        return "duplicate", None

    def _batch(self, records: list[tuple[int, Any]]) -> Counts:
        counts = Counts(read=len(records))
        rejected: list[tuple[int, str, str]] = []
        with transaction.atomic():
            for line_no, data in records:
                status, reason = self._decide(data)
                setattr(counts, status, getattr(counts, status) + 1)
                if reason is not None:
                    rejected.append((line_no, status, reason))
            self.batch_audit((records[0][0], records[-1][0]), counts)
        # Reported once the batch has committed, so a reported line is a decided line.
        for line_no, status, reason in rejected:
            self.report(f"line {line_no}: {status} {reason}")
        return counts
