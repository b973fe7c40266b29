"""The API's shared vocabulary of values: strict UUIDs, storable text, metadata, RFC 3339 timestamps.

Each rule is one plain function and the DRF field built on it. The functions serve
events.validation too, which parses backfill records by the million without a DRF
field per value.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from amani.json_bounds import metadata_problem, text_storable

# Hyphenated, any letter case (RFC 9562 §4 compares UUIDs case-insensitively).
UUID_PATTERN = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_UUID = re.compile(UUID_PATTERN)
# RFC 3339 date-time: the offset is required (naive times are refused).
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
# An unencoded "+01:00" in a query string arrives as " 01:00".
_SPACE_FOR_PLUS = re.compile(r" ([0-9]{2}:[0-9]{2})$")
# A provider's clock may run a little ahead of ours; further ahead is a mistake.
MAX_FUTURE = dt.timedelta(minutes=5)


def uuid_parse(value: object) -> uuid.UUID:
    """A UUID from its hyphenated string; ValueError otherwise (numbers, braces, URNs)."""
    if not isinstance(value, str) or not _UUID.fullmatch(value):
        raise ValueError("Must be a UUID string.")
    return uuid.UUID(value)


def timestamp_parse(value: object) -> dt.datetime:
    """An aware datetime from an RFC 3339 string with an offset; ValueError otherwise."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("Must be an RFC 3339 timestamp with an offset, such as 2026-11-20T14:02:18Z.")
    text = value.upper()
    if "." in text:  # Python keeps microseconds: drop digits past the sixth (nanosecond inputs)
        head, _, rest = text.partition(".")
        digits = re.match(r"[0-9]+", rest).group()
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits) :]}"
    try:
        parsed = dt.datetime.fromisoformat(text)
        # In UTC: PostgreSQL refuses offsets beyond ±15:59 (RFC 3339 allows ±23:59), and years 1
        # and 9999 with an offset fall out of range here rather than in the database.
        return parsed.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise ValueError("Not a valid date and time.") from None


def timestamp_future_problem(value: dt.datetime, *, now: dt.datetime | None = None) -> str | None:
    """Why `value` cannot be accepted as a time that has happened, or None."""
    if value > (now or dt.datetime.now(dt.UTC)) + MAX_FUTURE:
        return "Must not be more than 5 minutes in the future."
    return None


def timestamp_format(value: dt.datetime) -> str:
    """RFC 3339 in UTC, `Z` suffix, as DRF renders datetimes elsewhere in the API."""
    text = value.astimezone(dt.UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class StrictUUIDField(serializers.UUIDField):
    """A UUID given as a hyphenated string; DRF's own also takes integers and other spellings."""

    def to_internal_value(self, data: Any) -> uuid.UUID:
        try:
            return uuid_parse(data)
        except ValueError:
            self.fail("invalid", value=data)


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


@extend_schema_field(OpenApiTypes.OBJECT)
class MetadataField(serializers.Field):
    """A JSON object within amani.json_bounds (the same rule as events' metadata)."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if problem := metadata_problem(data):
            raise serializers.ValidationError(problem)
        return data

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field(OpenApiTypes.DATETIME)
class Rfc3339Field(serializers.Field):
    """An RFC 3339 timestamp with an offset (timestamp_parse).

    `past=True` adds the future bound; `in_query=True` reads a trailing " hh:mm" as the
    "+hh:mm" it was before the query string decoded its plus sign.
    """

    def __init__(self, *, past: bool = False, in_query: bool = False, **kwargs: Any) -> None:
        self.past = past
        self.in_query = in_query
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> dt.datetime:
        if self.in_query and isinstance(data, str):
            data = _SPACE_FOR_PLUS.sub(r"+\1", data)
        try:
            value = timestamp_parse(data)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None
        if self.past and (problem := timestamp_future_problem(value)):
            raise serializers.ValidationError(problem)
        return value

    def to_representation(self, value: dt.datetime) -> str:
        return timestamp_format(value)
