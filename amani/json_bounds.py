"""The one bound on JSON depth and size, for every body, record and metadata object.

Python's JSON encoder and decoder, `repr` and psycopg's jsonb dump all recurse, and share
one recursion limit with the frames of the request around them: a document a few hundred
levels deep parsed fine but crashed later, at a depth that depended on the code path
(issue 17: wallets 500 at 916-925 levels, events accepted 928). So depth is bounded far
below any recursion limit, by iterative walks, in one place:

- metadata (wallets, events: API bodies, batch items, backfill records) nests at most
  `METADATA_MAX_DEPTH` levels and serializes to at most `API_MAX_BODY_BYTES` of JSON,
  else 400 `validation_error` on `metadata`;
- a whole document (a request body, a JSONL line, a CSV metadata cell) nests at most
  `DOCUMENT_MAX_DEPTH` levels, else 400 `invalid_json` (a rejected record in a backfill).
  It leaves room for the deepest envelope around metadata (a batch body's
  `{"events": [{"metadata": …}]}`), so too-deep metadata is refused on its field, item
  by item, and nothing deeper than this ever reaches serializers, error messages or
  the database;
- the admin loads and renders what is stored with the same bound (`json_display_text`).
"""

from __future__ import annotations

import json
import math
from typing import Any

from django.conf import settings

METADATA_MAX_DEPTH = 64
DOCUMENT_MAX_DEPTH = 2 * METADATA_MAX_DEPTH

_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# One decoder for every document: json.loads with keyword arguments builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def document_loads(text: str, *, decoder: json.JSONDecoder = _DECODER) -> Any:
    """Parse one JSON document (a request body, a backfill line or cell, a stored jsonb text,
    a provider's webhook): ValueError if it is not JSON, holds NaN or Infinity, or nests deeper
    than DOCUMENT_MAX_DEPTH. `decoder` may read numbers its own way (webhooks read them exactly)."""
    try:
        value = decoder.decode(text)
        too_deep = json_depth_exceeds(value, DOCUMENT_MAX_DEPTH)
    except RecursionError:
        too_deep = True
    if too_deep:
        raise ValueError(f"the document nests deeper than {DOCUMENT_MAX_DEPTH} levels")
    return value


def json_depth_exceeds(value: object, limit: int) -> bool:
    """Whether `value` nests more than `limit` levels (a scalar is 0, `{}` and `[]` are 1)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def text_storable(value: str) -> bool:
    """PostgreSQL text and jsonb refuse NUL; UTF-8 cannot encode a lone surrogate (JSON "\\ud800")."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _size_bound(value: object, limit_depth: int) -> int | None:
    """None unless storable within the depth bound (no NUL or lone surrogate in any key or
    string, finite numbers only); else an upper bound of its compact UTF-8 JSON size.

    A character takes at most 6 bytes (a \\uXXXX escape), an int at most bit_length/3 + 2
    characters, a float 24: the bound only decides whether the exact size is worth computing.
    """
    bound = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if not text_storable(item):
                return None
            bound += 6 * len(item) + 2
        elif isinstance(item, dict):
            if depth > limit_depth:
                return None
            for key, child in item.items():
                if not isinstance(key, str) or not text_storable(key):
                    return None
                bound += 6 * len(key) + 4  # quotes, colon, comma
                stack.append((child, depth + 1))
            bound += 2
        elif isinstance(item, list):
            if depth > limit_depth:
                return None
            stack.extend((child, depth + 1) for child in item)
            bound += 2 + len(item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                return None
            bound += 24
        elif isinstance(item, bool) or item is None:
            bound += 5
        elif isinstance(item, int):
            bound += item.bit_length() // 3 + 2
        else:
            return None
    return bound


def json_size(value: object) -> int:
    """Bytes of the compact UTF-8 JSON text of `value` (storable and within the depth bound)."""
    text = _COMPACT_JSON.encode(value)
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def metadata_problem(value: object) -> str | None:
    """Why `value` cannot be stored as metadata, or None: the one rule for wallets and events.

    A JSON object, at most METADATA_MAX_DEPTH levels deep, storable in jsonb, and no larger
    than a single request body could carry (settings.API_MAX_BODY_BYTES): a batch item or a
    backfill record may not carry more than one ingest request can.
    """
    if not isinstance(value, dict):
        return "Must be a JSON object."
    bound = _size_bound(value, METADATA_MAX_DEPTH)
    if bound is None:
        if json_depth_exceeds(value, METADATA_MAX_DEPTH):
            return f"Must not nest deeper than {METADATA_MAX_DEPTH} levels."
        return "Must not contain \\u0000, unpaired surrogates or non-finite numbers."
    limit = settings.API_MAX_BODY_BYTES
    if bound > limit and (size := json_size(value)) > limit:
        return f"Must serialize to at most {limit} bytes of JSON (the request body limit); got {size}."
    return None


def json_display_text(stored: str) -> str:
    """Indented JSON for the admin, from the jsonb column's text; a notice instead for a
    document past the bound (stored before the bound existed), which Django's JSONField
    could not even load without recursing too deep."""
    try:
        value = document_loads(stored)
    except ValueError:
        return f"(nested deeper than {DOCUMENT_MAX_DEPTH} levels: not displayed)"
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True)
