"""Serializers shared by every app's API: the error envelope, for the OpenAPI document."""

from __future__ import annotations

from rest_framework import serializers


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="On validation_error only: each offending field (or header) and its messages.",
    )


class ErrorEnvelopeSerializer(serializers.Serializer):
    """{"error": {"code", "message", "fields"?}}: every error response (amani.api.errors)."""

    error = ErrorDetailSerializer()
