"""Request parsing and the wallet representation (API.md, Wallets)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from amani.api.fields import MetadataField, StrictCharField, StrictUUIDField
from amani.api.pagination import Page, PageParams
from amani.api.serializers import renders
from wallets.models import Provider, Wallet


def not_only_whitespace(value: str) -> None:
    if not value.strip():
        raise serializers.ValidationError("This field may not be blank.")


class WalletRegisterSerializer(serializers.Serializer):
    user_id = StrictUUIDField()
    provider = serializers.ChoiceField(choices=Provider.choices)
    provider_account_id = StrictCharField(max_length=255, validators=[not_only_whitespace])
    provider_customer_id = StrictCharField(
        max_length=255, allow_null=True, default=None, validators=[not_only_whitespace]
    )
    metadata = MetadataField(default=dict)


class WalletSerializer(serializers.ModelSerializer):
    """The contract's wallet: `id` is the public UUID; the internal key never leaves the server."""

    id = serializers.UUIDField(source="public_id", read_only=True)
    metadata = MetadataField(read_only=True)

    class Meta:
        model = Wallet
        fields = [
            "id",
            "user_id",
            "provider",
            "provider_account_id",
            "provider_customer_id",
            "metadata",
            "is_active",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class StrictBooleanField(serializers.BooleanField):
    """Only `true` or `false` (any case): DRF's own also takes 1, yes, on…"""

    def to_internal_value(self, data: Any) -> bool:
        if isinstance(data, str) and data.lower() in ("true", "false"):
            return data.lower() == "true"
        self.fail("invalid", input=data)


class WalletListParams(PageParams):
    user_id = StrictUUIDField(required=False)
    provider = serializers.ChoiceField(choices=Provider.choices, required=False)
    is_active = StrictBooleanField(required=False)


class WalletPageSerializer(serializers.Serializer):
    results = WalletSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)


@renders(WalletPageSerializer)
def wallet_page_representation(page: Page) -> dict[str, Any]:
    return {"results": WalletSerializer(page.results, many=True).data, "next_cursor": page.next_cursor}
