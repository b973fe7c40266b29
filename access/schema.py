"""OpenAPI description of the HMAC scheme (drf-spectacular picks it up in AccessConfig.ready)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

HMAC_DESCRIPTION = """\
Every `/api/v1/` request except the schema and docs is signed with HMAC-SHA256:

    Authorization: HMAC-SHA256 keyId="<key id>", ts="<unix seconds>", nonce="<nonce>", signature="<hex>"

`nonce` is 16-64 characters of `[A-Za-z0-9_-]`, never reused with the same key.
`signature` is the lowercase hex HMAC-SHA256, keyed with the secret's UTF-8 bytes, of
these seven lines joined by `\\n` (no trailing newline):

    HMAC-SHA256
    <ts>
    <nonce>
    <HTTP method, upper case>
    <request path exactly as sent, without the query string>
    <raw query string without '?', empty if none>
    <lowercase hex SHA-256 of the raw body bytes (of b"" when there is no body)>

`ts` must be within 300 s of the server's clock. Failures are `401` with
`WWW-Authenticate: HMAC-SHA256` and one of the codes `missing_credentials`,
`malformed_credentials`, `unknown_key`, `revoked_key`, `stale_timestamp`,
`replayed_nonce`, `bad_signature`; a request outside the client's scopes is
`403 insufficient_scope`. Python callers can use `amani.signing.HmacAuth` with `requests`.
"""


class HmacAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "access.authentication.HmacAuthentication"
    name = "HmacSignature"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "apiKey", "in": "header", "name": "Authorization", "description": HMAC_DESCRIPTION}
