"""Append-only wallet transaction events, balance buckets and provider balance reports."""

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from amani.money import amount_format
from wallets.models import Wallet

# 18 integer digits (the contract's limit) and up to 4 decimals (CLF, UYW).
AMOUNT_DIGITS = 22
AMOUNT_PLACES = 4
# Sums over a history: room for a million maximal amounts.
TOTAL_DIGITS = 30


class EventType(models.TextChoices):
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    TRANSFER_IN = "transfer_in"
    TRANSFER_OUT = "transfer_out"
    FEE = "fee"
    REFUND = "refund"
    HOLD = "hold"
    RELEASE = "release"


# The balance rules (events.balances): the sign of each event type's amount in the ledger and in held.
LEDGER_SIGN: dict[str, int] = {
    EventType.DEPOSIT: 1,
    EventType.TRANSFER_IN: 1,
    EventType.REFUND: 1,
    EventType.WITHDRAWAL: -1,
    EventType.TRANSFER_OUT: -1,
    EventType.FEE: -1,
}
HELD_SIGN: dict[str, int] = {EventType.HOLD: 1, EventType.RELEASE: -1}


class WalletEvent(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="events", db_index=False)
    provider = models.CharField(max_length=32)
    event_type = models.CharField(max_length=16, choices=EventType.choices)
    amount = models.DecimalField(max_digits=AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES)
    currency = models.CharField(max_length=3)
    provider_event_id = models.CharField(max_length=255, null=True, blank=True)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "provider_event_id"], name="uq_event_provider_event"),
            models.UniqueConstraint(
                fields=["idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="uq_event_idempotency_key",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="ck_event_amount_positive"),
        ]
        indexes = [
            # History listing (keyset on occurred_at, id) and the in-day part of balances.
            models.Index(fields=["wallet", "-occurred_at", "-id"], name="ix_event_wallet_occurred"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {amount_format(self.amount, self.currency)} {self.currency}"


class BalanceBucket(models.Model):
    """Per wallet, currency and UTC day: the sums of that day's events.

    Maintained in the same transaction as every event insert, so a balance as of any
    instant is the sum of the whole days before it plus a scan of one day's events.
    """

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="+", db_index=False)
    currency = models.CharField(max_length=3)
    day = models.DateField()
    ledger = models.DecimalField(max_digits=TOTAL_DIGITS, decimal_places=AMOUNT_PLACES, default=0)
    held = models.DecimalField(max_digits=TOTAL_DIGITS, decimal_places=AMOUNT_PLACES, default=0)
    event_count = models.BigIntegerField(default=0)
    last_event_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["wallet", "currency", "day"], name="uq_bucket_wallet_currency_day"),
        ]

    def __str__(self) -> str:
        return f"{self.currency} {self.day}"


class ProviderBalanceReport(models.Model):
    """What a provider said a wallet held at an instant, kept for reconciliation."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="balance_reports", db_index=False)
    currency = models.CharField(max_length=3)
    available = models.DecimalField(max_digits=TOTAL_DIGITS, decimal_places=AMOUNT_PLACES)
    ledger = models.DecimalField(max_digits=TOTAL_DIGITS, decimal_places=AMOUNT_PLACES, null=True, blank=True)
    reported_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        indexes = [
            models.Index(fields=["wallet", "currency", "-reported_at", "-id"], name="ix_report_wallet_latest"),
            # The console's timeline: every currency's reports of a wallet, newest first.
            models.Index(fields=["wallet", "-reported_at", "-id"], name="ix_report_wallet_reported"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.currency} available {amount_format(self.available, self.currency)} "
            f"at {self.reported_at:%Y-%m-%d %H:%M}"
        )
