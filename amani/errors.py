"""Domain errors: a business-rule refusal raised by a service, with no notion of HTTP.

The API edge (amani.api.errors.exception_handler) maps each code to its status in one table.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal with the contract's error code, its message and any extra envelope fields."""

    code = "bad_request"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class NotFound(DomainError):
    code = "not_found"
