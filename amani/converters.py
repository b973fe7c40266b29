"""Path converters shared by the API's URLconfs.

Django's built-in `<uuid:>` matches lower-case UUIDs only, so a caller that prints
its UUIDs in upper case (.NET's `Guid.ToString("D").ToUpper()`, some SQL clients)
would get a 404 for a wallet that exists. RFC 9562 §4 says UUIDs are compared
case-insensitively; `<uuid_any:>` accepts either case and hands the view a `uuid.UUID`.
"""

from __future__ import annotations

import uuid

from django.urls import register_converter

from amani.api.fields import UUID_PATTERN


class UUIDAnyCaseConverter:
    """A hyphenated UUID in any letter case; anything else does not match (404)."""

    regex = UUID_PATTERN

    def to_python(self, value: str) -> uuid.UUID:
        return uuid.UUID(value)

    def to_url(self, value: uuid.UUID | str) -> str:
        return str(value).lower()


register_converter(UUIDAnyCaseConverter, "uuid_any")
