"""Django's test client, signing every request as the contract says (amani.signing)."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client

from amani import signing


class SignedClient:
    """Django's test client, signing every request with the contract's scheme."""

    def __init__(self, key_id: str, secret: str, client: Client | None = None) -> None:
        self.key_id = key_id
        self.secret = secret
        self.client = client or Client()

    def request(
        self,
        method: str,
        url: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        sign: bool = True,
    ):
        path, _, query = url.partition("?")
        if body is None:
            raw = b""
        elif isinstance(body, bytes):
            raw = body
        elif isinstance(body, str):
            raw = body.encode()
        else:
            raw = json.dumps(body).encode()
        headers = dict(headers or {})
        if sign:
            headers["Authorization"] = signing.authorization_header(
                key_id=self.key_id, secret=self.secret, method=method, path=path, query=query, body=raw
            )
        kwargs: dict[str, Any] = {"headers": headers}
        if raw or method in ("POST", "PUT", "PATCH"):
            kwargs["data"] = raw
            kwargs["content_type"] = content_type
        return self.client.generic(method, url, **kwargs)

    def get(self, url: str, **kwargs: Any):
        return self.request("GET", url, **kwargs)

    def post(self, url: str, body: Any = None, **kwargs: Any):
        return self.request("POST", url, body, **kwargs)
