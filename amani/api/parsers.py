"""The request body parser: UTF-8 JSON objects within amani.json_bounds, every failure a 4xx."""

from __future__ import annotations

from typing import Any

from django.utils.http import parse_header_parameters
from rest_framework import parsers
from rest_framework.exceptions import ParseError, UnsupportedMediaType

from amani.json_bounds import document_loads

UTF8_NAMES = frozenset({"utf-8", "utf8"})


class JSONParser(parsers.JSONParser):
    """Bodies are UTF-8 JSON (API.md): another charset is 415, never decoded as sent (DRF
    would read `charset=latin-1` as Latin-1). NaN, Infinity and documents nested past
    amani.json_bounds are invalid_json, as in backfill files (DRF's own parser let the
    RecursionError of a deeply nested body through as a 500)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        charset = parse_header_parameters(media_type or "")[1].get("charset")
        if charset is not None and charset.lower() not in UTF8_NAMES:
            raise UnsupportedMediaType(media_type, detail=f"Request bodies are UTF-8 JSON, not charset={charset}.")
        try:
            return document_loads(stream.read().decode("utf-8"))
        except ValueError as exc:  # UnicodeDecodeError too
            raise ParseError(f"JSON parse error - {exc}") from None
