"""The request body parser: DRF's JSON parser, UTF-8 only, depth-bounded, every failure a 4xx."""

from __future__ import annotations

from typing import Any

from django.utils.http import parse_header_parameters
from rest_framework import parsers
from rest_framework.exceptions import ParseError, UnsupportedMediaType

from amani.json_bounds import DOCUMENT_MAX_DEPTH, json_depth_exceeds

UTF8_NAMES = frozenset({"utf-8", "utf8"})


class JSONParser(parsers.JSONParser):
    """Bodies are UTF-8 JSON (API.md): another charset is 415, never decoded as sent
    (DRF would read `charset=latin-1` as Latin-1). A document nested deeper than
    amani.json_bounds.DOCUMENT_MAX_DEPTH is invalid_json, as is one deep enough to make the
    decoder recurse too far (DRF catches ValueError only: that RecursionError was a 500)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        charset = parse_header_parameters(media_type or "")[1].get("charset")
        if charset is not None and charset.lower() not in UTF8_NAMES:
            raise UnsupportedMediaType(media_type, detail=f"Request bodies are UTF-8 JSON, not charset={charset}.")
        try:
            data = super().parse(stream, media_type, {**(parser_context or {}), "encoding": "utf-8"})
            too_deep = json_depth_exceeds(data, DOCUMENT_MAX_DEPTH)
        except RecursionError:
            too_deep = True
        if too_deep:
            raise ParseError(f"JSON parse error - the document nests deeper than {DOCUMENT_MAX_DEPTH} levels.")
        return data
