"""API.md, checked from outside: the client of the HTTP contract tests (real HTTP to gunicorn, signed
with amani.signing.HmacAuth) and the assertions they share.

The live server and its keys are fixtures of the root conftest.py (`base_url`, `keys`, `key`, `api`):
one gunicorn per test module serves the test database; the tests talk to it only over HTTP, as the
acceptance client does. What the server writes is committed; the app tables are truncated when the
module ends (a flush after every test, as transactional tests do, would triple the run time).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from typing import Any, NamedTuple

import requests

from amani import signing
from amani.signing import HmacAuth
from testing.servers import REPO, production_env
from wallets.tests.factories import wallet_body

# Besides "all": one key for each of these scope sets (keys[scopes]).
SCOPE_SETS = [
    ("wallets:read",),
    ("wallets:write",),
    ("wallets:read", "wallets:write"),
    ("events:read",),
    ("events:write",),
]
TIMEOUT = 30
JSON = {"Content-Type": "application/json"}


class Creds(NamedTuple):
    key_id: str
    secret: str


class Api:
    """`requests` with HmacAuth against /api/v1/; every call returns the raw response."""

    def __init__(self, base: str, issued: Creds) -> None:
        self.base = base
        self.session = requests.Session()
        self.session.auth = HmacAuth(issued.key_id, issued.secret)

    def url(self, path: str) -> str:
        return f"{self.base}/api/v1/{path.lstrip('/')}"

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.url(path), timeout=TIMEOUT, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        if body is not None:
            kwargs["data"] = body if isinstance(body, bytes | str) else json.dumps(body)
            kwargs["headers"] = {**JSON, **kwargs.get("headers", {})}
        return self.session.post(self.url(path), timeout=TIMEOUT, **kwargs)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.url(path), timeout=TIMEOUT, **kwargs)

    def wallet(self, **overrides: Any) -> dict[str, Any]:
        """Register a wallet (wallet_body with these overrides); its body as the server returned it."""
        response = self.post("wallets", wallet_body(**overrides))
        assert response.status_code == 201, response.text
        return response.json()

    def ingest(self, wallet_id: str, body: dict[str, Any], **kwargs: Any) -> requests.Response:
        return self.post(f"wallets/{wallet_id}/events/ingest", body, **kwargs)


def http_get(url: str, **kwargs: Any) -> requests.Response:
    """An unsigned (or hand-signed) GET."""
    kwargs.setdefault("timeout", TIMEOUT)
    return requests.get(url, **kwargs)  # noqa: S113 - the timeout is set just above


def raw_header(issued: Creds, method: str, path: str, query: str = "", body: bytes = b"", **kw: Any) -> str:
    return signing.authorization_header(
        key_id=issued.key_id, secret=issued.secret, method=method, path=path, query=query, body=body, **kw
    )


def error_of(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    """Assert the envelope with this status and code; returns the error object."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert error["code"] == code, body
    assert isinstance(error["message"], str) and error["message"]
    assert ("fields" in error) == (code == "validation_error"), body
    return error


def auth_error(response: requests.Response, code: str) -> None:
    error_of(response, 401, code)
    assert response.headers["WWW-Authenticate"] == "HMAC-SHA256"


def parse_rfc3339(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert value.tzinfo is not None, text
    return value


def manage(args: list[str], stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """`manage.py <args>` in another process, in production mode on the test database."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        input=stdin,
        cwd=REPO,
        env=production_env(),
        capture_output=True,
        timeout=120,
    )
