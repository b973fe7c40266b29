"""Sealed blocks of the tamper-evident history, and the verifications run over them.

The sealed records themselves stay where they are (events_walletevent, audit_auditrecord):
each carries `xact_id`, the id of the transaction that wrote it (a database default added
by migration 0001, not a model field, so no insert path has to know about it).
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models

GENESIS_HASH = "0" * 64


class Block(models.Model):
    """One sealed block: the records of every transaction with xact_from <= xact_id < xact_to.

    `hash` is SHA-256 over a header (number, previous_hash, sealed_at, the xact bounds) and the
    canonical encodings of the block's records (docs/runbooks/history.md). The id arrays and
    `digests` (SHA-256 of each record's encoding, in block order) let verification name the
    record that changed; counts and high-water ids are recomputed from the records.
    """

    number = models.BigIntegerField(primary_key=True)
    previous_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)
    sealed_at = models.DateTimeField()
    xact_from = models.BigIntegerField(help_text="Every transaction below this was sealed by earlier blocks.")
    xact_to = models.BigIntegerField(help_text="Every transaction below this had ended when the block was sealed.")
    xact_next = models.BigIntegerField(
        help_text="The sealer's own transaction: every transaction with an id then has a lower one."
    )
    event_count = models.IntegerField()
    audit_count = models.IntegerField()
    records_total = models.BigIntegerField(help_text="Records sealed by this block and every block before it.")
    max_event_id = models.BigIntegerField(help_text="Highest event id sealed up to this block.")
    max_audit_id = models.BigIntegerField(help_text="Highest audit record id sealed up to this block.")
    event_ids = ArrayField(models.BigIntegerField())
    event_public_ids = ArrayField(models.UUIDField())
    audit_ids = ArrayField(models.BigIntegerField())
    digests = models.BinaryField()

    class Meta:
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"block {self.number}"

    @property
    def records(self) -> int:
        return self.event_count + self.audit_count


class Verification(models.Model):
    """One run of `manage.py verify_history`: what it checked and what it found."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    ok = models.BooleanField()
    blocks = models.BigIntegerField()
    records = models.BigIntegerField()
    head = models.CharField(max_length=64, blank=True)
    expected_head = models.CharField(max_length=64, blank=True, help_text="The --head it was asked to find.")
    problem = models.TextField(blank=True)

    class Meta:
        ordering = ["-finished_at", "-id"]
        indexes = [models.Index(fields=["-finished_at", "-id"], name="ix_verification_latest")]

    def __str__(self) -> str:
        return f"verification {self.finished_at:%Y-%m-%d %H:%M:%S} {'ok' if self.ok else 'FAILED'}"
