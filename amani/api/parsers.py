"""The request body parser: DRF's JSON parser, with every parse failure a 400."""

from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's parser lets RecursionError through (it catches ValueError only), so a body
    such as `[[[[…]]]]` nested a few thousand deep was a 500; here it is invalid_json."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply.") from None
