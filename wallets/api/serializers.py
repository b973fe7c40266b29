"""Request parsing and the wallet representation (API.md, Wallets)."""

from __future__ import annotations

import re
import uuid
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from amani.api.pagination import PageParams
from amani.json_bounds import metadata_problem, text_storable
from wallets.models import Provider, Wallet

_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class StrictUUIDField(serializers.UUIDField):
    """A UUID given as a hyphenated string; DRF's own also takes integers and other spellings."""

    def to_internal_value(self, data: Any) -> uuid.UUID:
        if not isinstance(data, str) or not _UUID_RE.fullmatch(data):
            self.fail("invalid", value=data)
        return uuid.UUID(data)


class StrictCharField(serializers.CharField):
    """Text as sent: a JSON string only (no number coercion), not trimmed, storable in PostgreSQL."""

    default_error_messages = {"not_a_string": "Must be a string."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_a_string")
        if not text_storable(data):
            raise serializers.ValidationError("Null characters (\\u0000) and unpaired surrogates are not allowed.")
        return data


def not_only_whitespace(value: str) -> None:
    if not value.strip():
        raise serializers.ValidationError("This field may not be blank.")


@extend_schema_field(OpenApiTypes.OBJECT)
class MetadataField(serializers.Field):
    """A JSON object within amani.json_bounds (the same rule as events' metadata)."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if problem := metadata_problem(data):
            raise serializers.ValidationError(problem)
        return data

    def to_representation(self, value: Any) -> Any:
        return value


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
