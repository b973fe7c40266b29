"""The wallet registry: which payment-provider wallets belong to which user."""

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone


class Provider(models.TextChoices):
    """Payment providers. Adding one is a code change only: the column is plain text."""

    FINCRA = "fincra", "Fincra"
    PAYSTACK = "paystack", "Paystack"
    FLUTTERWAVE = "flutterwave", "Flutterwave"
    MONO = "mono", "Mono"
    KORAPAY = "korapay", "Korapay"
    MPESA = "mpesa", "M-Pesa"
    MTN_MOMO = "mtn_momo", "MTN MoMo"
    AIRTEL_MONEY = "airtel_money", "Airtel Money"
    CHIPPER = "chipper", "Chipper Cash"
    INTERSWITCH = "interswitch", "Interswitch"


class Wallet(models.Model):
    """A provider wallet registered to a user. Written only through wallets.services."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user_id = models.UUIDField()
    provider = models.CharField(max_length=32, choices=Provider.choices)
    provider_account_id = models.CharField(max_length=255)
    provider_customer_id = models.CharField(max_length=255, null=True, blank=True)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True, editable=False)
    metadata = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # One provider account belongs to one user: a second user's claim is a 409.
            models.UniqueConstraint(fields=["provider", "provider_account_id"], name="uq_wallet_provider_account"),
            models.UniqueConstraint(
                fields=["idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="uq_wallet_idempotency_key",
            ),
        ]
        indexes = [
            # Listing is newest first, optionally per user, paged by (created_at, id).
            models.Index(fields=["-created_at", "-id"], name="ix_wallet_created"),
            models.Index(fields=["user_id", "-created_at", "-id"], name="ix_wallet_user_created"),
            # Support searches by the provider's account id alone; the unique constraint leads with provider.
            models.Index(fields=["provider_account_id"], name="ix_wallet_provider_account_id"),
            # The support console searches by provider customer id alone (events.console.wallet_search);
            # provider webhooks look it up with the provider (webhooks.queries): one index serves both.
            models.Index(fields=["provider_customer_id", "provider"], name="ix_wallet_provider_customer"),
            # `?is_active=false` lists the few deactivated wallets without walking the active ones.
            models.Index(
                fields=["-created_at", "-id"], condition=Q(is_active=False), name="ix_wallet_inactive_created"
            ),
        ]
        permissions = [
            # Granted apart from view access: deactivation stops a wallet's use, so the
            # Support group (view-only) does not hold it by default.
            ("change_wallet_status", "Can deactivate and reactivate wallets"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.provider_account_id}"
