"""HMAC-SHA256 request signing as a DRF authentication class (the scheme: amani.signing)."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone
from django.utils.encoding import escape_uri_path
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from access import services
from amani import signing

logger = logging.getLogger("amani.auth")


class HmacAuthFailed(exceptions.AuthenticationFailed):
    """401 with one of the contract's codes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code)


def raw_path(request: Request) -> str:
    """The request path exactly as sent, as the caller signed it.

    gunicorn passes the undecoded request target as RAW_URI; without it (test client,
    other servers) the path is re-encoded the way clients send it.
    """
    raw = request.META.get("RAW_URI") or request.META.get("REQUEST_URI")
    if raw:
        if "://" in raw:  # absolute-form request target
            raw = "/" + raw.split("://", 1)[1].partition("/")[2]
        return raw.split("?", 1)[0]
    return escape_uri_path(request._request.path)


class HmacAuthentication(BaseAuthentication):
    """Checks, in the contract's order: parse, key, timestamp, signature, then nonce.

    The signature covers the SHA-256 of the raw body bytes, which are read here,
    before any parser sees them. A nonce is recorded only after the signature has
    verified, so a forged request cannot use up a legitimate nonce.
    """

    clock_skew = property(lambda self: settings.HMAC_CLOCK_SKEW_SECONDS)
    # Each process deletes expired nonces at most this often, from the request path,
    # so the table stays small without a scheduler; `manage.py prune_nonces` does the same.
    nonce_prune_interval = 60.0
    _next_prune = 0.0  # time.monotonic() after which this process prunes again

    def authenticate(self, request: Request) -> tuple[services.Caller, services.Caller] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header or not signing.uses_scheme(header):
            return None  # DRF answers 401 missing_credentials
        try:
            credentials = signing.parse_authorization(header)
        except signing.MalformedCredentials as exc:
            raise HmacAuthFailed("malformed_credentials", str(exc)) from None

        now = timezone.now()
        key = services.api_key_lookup(key_id=credentials.key_id, now=now)
        if key is None:
            raise HmacAuthFailed("unknown_key", "No client has this key id.")
        if not key.usable:
            raise self.revoked()
        if abs(time.time() - credentials.ts) > self.clock_skew:
            raise HmacAuthFailed(
                "stale_timestamp", f"ts is more than {self.clock_skew} s away from the server's clock."
            )

        message = signing.string_to_sign(
            ts=credentials.ts,
            nonce=credentials.nonce,
            method=request.method,
            path=raw_path(request),
            query=request.META.get("QUERY_STRING", ""),
            body=request._request.body,
        )
        expected = signing.signature(services.secret_decrypt(key.secret_encrypted), message)
        if not signing.signatures_equal(expected, credentials.signature):
            raise HmacAuthFailed("bad_signature", "The signature does not match the request.")
        outcome = services.nonce_record(key_id=key.key_id, nonce=credentials.nonce, now=now)
        if outcome is services.NonceOutcome.REVOKED:  # revoked between the two statements
            raise self.revoked()
        if outcome is services.NonceOutcome.REPLAYED:
            raise HmacAuthFailed("replayed_nonce", "This nonce was already used with this key.")
        self.nonces_prune_now_and_then()
        caller = services.Caller(key_id=key.key_id, scopes=frozenset(key.scopes))
        return caller, caller

    @staticmethod
    def revoked() -> HmacAuthFailed:
        return HmacAuthFailed("revoked_key", "This key has been revoked or has expired.")

    def nonces_prune_now_and_then(self) -> None:
        """Delete expired nonces, once per `nonce_prune_interval` in each process."""
        tick = time.monotonic()
        if tick < HmacAuthentication._next_prune:
            return
        HmacAuthentication._next_prune = tick + self.nonce_prune_interval
        try:
            services.nonce_prune()
        except DatabaseError:  # housekeeping: the request itself has already been authenticated
            logger.warning("nonce pruning failed", exc_info=True)

    def authenticate_header(self, request: Request) -> str:
        return signing.SCHEME
