"""Keyset (cursor) pagination, newest first, on (timestamp, id).

Cursors are Fernet tokens: opaque (internal ids never leave the server) and
authenticated (a cursor the server did not issue is a 400). A cursor is bound to
the listing it came from, so it cannot be replayed against another filter set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.fernet import InvalidToken
from django.db.models import Q, QuerySet
from rest_framework import serializers

from amani.crypto import fernet

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


class PageParams(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT)
    cursor = serializers.CharField(required=False, max_length=1024)


@dataclass(frozen=True)
class Page:
    results: list[Any]
    next_cursor: str | None


def cursor_issue(listing: str, position: list[Any]) -> str:
    """An opaque, authenticated cursor for `position` (JSON values) in `listing`."""
    return fernet("cursor").encrypt(json.dumps([listing, *position]).encode()).decode()


def cursor_read(listing: str, cursor: str) -> list[Any]:
    """The position a cursor of `listing` carries; a 400 for any cursor this server did not issue for it."""
    try:
        bound, *position = json.loads(fernet("cursor").decrypt(cursor.encode()))
    except (InvalidToken, ValueError, TypeError):
        raise cursor_invalid() from None
    if bound != listing:
        raise cursor_invalid()
    return position


def cursor_invalid() -> serializers.ValidationError:
    """The 400 for a cursor this server did not issue for the listing (malformed, tampered, or another's)."""
    return serializers.ValidationError({"cursor": ["This cursor was not issued for this listing."]})


def _encode(listing: str, position: tuple[datetime, int]) -> str:
    return cursor_issue(listing, [position[0].isoformat(), position[1]])


def _decode(listing: str, cursor: str) -> tuple[datetime, int]:
    try:
        when, pk = cursor_read(listing, cursor)
        return datetime.fromisoformat(when), int(pk)
    except (ValueError, TypeError):
        raise cursor_invalid() from None


def keyset_page(
    queryset: QuerySet,
    *,
    time_field: str,
    limit: int,
    cursor: str | None,
    listing: str,
) -> Page:
    """One page of `queryset` ordered by (`time_field`, id) descending.

    The redundant `time_field <= t` bound lets PostgreSQL start the index scan at the
    cursor, so a page deep in a long history costs what the first page costs.
    `listing` names the listing and its filters; the cursor carries it.
    """
    queryset = queryset.order_by(f"-{time_field}", "-id")
    if cursor:
        when, pk = _decode(listing, cursor)
        queryset = queryset.filter(
            Q(**{f"{time_field}__lte": when}) & (Q(**{f"{time_field}__lt": when}) | Q(id__lt=pk))
        )
    rows = list(queryset[: limit + 1])
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = _encode(listing, (getattr(last, time_field), last.id))
    return Page(results=rows, next_cursor=next_cursor)
