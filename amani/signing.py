"""The HMAC-SHA256 request-signing scheme, shared by the server and by callers.

The server's authentication class and the `requests` auth class below both build
the string to sign with `string_to_sign`, so the two can never drift apart.

    Authorization: HMAC-SHA256 keyId="…", ts="…", nonce="…", signature="…"
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

SCHEME = "HMAC-SHA256"
PARAMETERS = ("keyId", "ts", "nonce", "signature")

_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")
_SIGNATURE_RE = re.compile(r"[0-9a-f]{64}")
_TS_RE = re.compile(r"[0-9]{1,12}")
_PARAM_RE = re.compile(r'\s*([A-Za-z]+)="([^"]*)"\s*')


class MalformedCredentials(ValueError):
    """The Authorization header uses this scheme but does not parse."""


@dataclass(frozen=True)
class Credentials:
    key_id: str
    ts: int
    nonce: str
    signature: str


def body_digest(body: bytes | None) -> str:
    return hashlib.sha256(body or b"").hexdigest()


def string_to_sign(*, ts: int | str, nonce: str, method: str, path: str, query: str, body: bytes | None) -> str:
    """The exact text that is signed: seven lines joined by '\\n', no trailing newline."""
    return "\n".join([SCHEME, str(ts), nonce, method.upper(), path, query, body_digest(body)])


def signature(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def signatures_equal(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())


def _split_scheme(header: str) -> tuple[str, str]:
    """("scheme", "parameters"): the scheme is separated by any run of spaces or tabs."""
    parts = header.strip().split(None, 1)
    return (parts[0], parts[1] if len(parts) > 1 else "") if parts else ("", "")


def uses_scheme(header: str) -> bool:
    """True when the header names this scheme (case-insensitively)."""
    return _split_scheme(header)[0].lower() == SCHEME.lower()


def parse_authorization(header: str) -> Credentials:
    """Parse an `HMAC-SHA256 …` header; parameters in any order, `,`-separated."""
    scheme, rest = _split_scheme(header)
    if scheme.lower() != SCHEME.lower():
        raise MalformedCredentials(f"Authorization scheme must be {SCHEME}.")
    params: dict[str, str] = {}
    for part in rest.split(","):
        match = _PARAM_RE.fullmatch(part)
        if not match:
            raise MalformedCredentials("Authorization parameters must be name=\"value\" pairs separated by ','.")
        name, value = match.groups()
        if name not in PARAMETERS or name in params:
            raise MalformedCredentials(f"Unexpected or repeated Authorization parameter {name!r}.")
        params[name] = value
    missing = [name for name in PARAMETERS if name not in params]
    if missing:
        raise MalformedCredentials(f"Authorization is missing {', '.join(missing)}.")
    if not params["keyId"] or len(params["keyId"]) > 64:
        raise MalformedCredentials("keyId must be 1-64 characters.")
    if not _TS_RE.fullmatch(params["ts"]):
        raise MalformedCredentials("ts must be whole unix seconds.")
    if not _NONCE_RE.fullmatch(params["nonce"]):
        raise MalformedCredentials("nonce must be 16-64 characters of [A-Za-z0-9_-].")
    if not _SIGNATURE_RE.fullmatch(params["signature"]):
        raise MalformedCredentials("signature must be 64 lowercase hex characters.")
    return Credentials(params["keyId"], int(params["ts"]), params["nonce"], params["signature"])


def authorization_header(
    *,
    key_id: str,
    secret: str,
    method: str,
    path: str,
    query: str = "",
    body: bytes | None = b"",
    ts: int | None = None,
    nonce: str | None = None,
) -> str:
    """Build the Authorization header value for one request."""
    ts = int(time.time()) if ts is None else ts
    nonce = nonce or secrets.token_urlsafe(24)
    message = string_to_sign(ts=ts, nonce=nonce, method=method, path=path, query=query, body=body)
    return f'{SCHEME} keyId="{key_id}", ts="{ts}", nonce="{nonce}", signature="{signature(secret, message)}"'


try:
    import requests
except ImportError:  # pragma: no cover - requests is a runtime requirement
    requests = None


if requests is not None:

    class HmacAuth(requests.auth.AuthBase):
        """`requests` auth that signs each prepared request.

        >>> requests.post(url, json=body, auth=HmacAuth(key_id, secret))
        """

        def __init__(self, key_id: str, secret: str) -> None:
            self.key_id = key_id
            self.secret = secret

        def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
            url = urlsplit(request.url)
            body = request.body.encode() if isinstance(request.body, str) else request.body
            request.headers["Authorization"] = authorization_header(
                key_id=self.key_id,
                secret=self.secret,
                method=request.method,
                path=url.path or "/",
                query=url.query,
                body=body,
            )
            return request
