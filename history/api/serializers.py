"""The head of the history as the API renders it."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from amani.api.fields import timestamp_format
from amani.api.serializers import renders
from history.models import Block


class HeadSerializer(serializers.Serializer):
    """For the OpenAPI document; head_representation renders."""

    block = serializers.IntegerField(help_text="The latest block's number (the chain starts at 1).")
    hash = serializers.CharField(help_text="Its SHA-256, 64 lowercase hex digits.")
    sealed_at = serializers.DateTimeField()
    records = serializers.IntegerField(help_text="Events and audit records sealed up to and including it.")


@renders(HeadSerializer)
def head_representation(block: Block) -> dict[str, Any]:
    return {
        "block": block.number,
        "hash": block.hash,
        "sealed_at": timestamp_format(block.sealed_at),
        "records": block.records_total,
    }
