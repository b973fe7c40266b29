"""The framework-free reference of issue 15: the signed single ingest on plain WSGI + psycopg.

Same contract and the same writes as POST /api/v1/wallets/{id}/events/ingest (HMAC check
in the contract's order, nonce, triple dedup, balance bucket, audit row), written the
straightforward way without Django or DRF: seven round trips for a new event (key, nonce,
wallet, then in one transaction: event insert, bucket upsert, audit insert, COMMIT), the
duplicate path reading the earlier event instead of writing. psycopg binds server-side and
prepares repeated statements itself. Only for `bench.run`, which serves it with gunicorn
next to the real service and reports the ratio; it validates just enough for the bench's
well-formed traffic.

    gunicorn bench.reference_service:application  (DATABASE_URL, SECRET_KEY as for amani)
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from decimal import Decimal
from functools import lru_cache
from typing import Any

import psycopg
from cryptography.fernet import Fernet

_HEADER = re.compile(r'(keyId|ts|nonce|signature)="([^"]*)"')
_PATH = re.compile(r"^/api/v1/wallets/([0-9a-f-]{36})/events/ingest$")
_FERNET = Fernet(
    base64.urlsafe_b64encode(hashlib.sha256(b"amani:api-secret:" + os.environ["SECRET_KEY"].encode()).digest())
)
_local = threading.local()  # one connection per worker thread (sync or gthread workers)

_LEDGER = (
    "CASE WHEN event_type IN ('deposit', 'refund', 'transfer_in') THEN amount "
    "WHEN event_type IN ('fee', 'transfer_out', 'withdrawal') THEN -amount ELSE 0 END"
)
_HELD = "CASE WHEN event_type = 'hold' THEN amount WHEN event_type = 'release' THEN -amount ELSE 0 END"
KEY_SQL = (
    "SELECT k.secret_encrypted, c.scopes::text, k.revoked_at IS NULL AND (k.expires_at IS NULL OR "
    "k.expires_at > now()) AND c.is_active FROM amani_apikey k JOIN amani_apiclient c ON c.id = k.client_id "
    "WHERE k.key_id = %s"
)
NONCE_SQL = (
    "INSERT INTO amani_apinonce (key_id, nonce, seen_at) VALUES (%s, %s, now()) ON CONFLICT (key_id, nonce) DO NOTHING"
)
WALLET_SQL = "SELECT id, provider, user_id FROM wallets_wallet WHERE public_id = %s"
INSERT_SQL = (
    "INSERT INTO events_walletevent (public_id, wallet_id, provider, event_type, amount, currency, "
    "provider_event_id, idempotency_key, metadata, occurred_at, created_at) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s) ON CONFLICT DO NOTHING RETURNING id"
)
BUCKET_SQL = (
    "INSERT INTO events_balancebucket AS b (wallet_id, currency, day, ledger, held, event_count, last_event_at) "
    f"SELECT %s, %s, (%s::timestamptz AT TIME ZONE 'UTC')::date, {_LEDGER}, {_HELD}, 1, %s "
    "FROM (SELECT %s::text AS event_type, %s::numeric AS amount) e "
    "ON CONFLICT (wallet_id, currency, day) DO UPDATE SET ledger = b.ledger + EXCLUDED.ledger, "
    "held = b.held + EXCLUDED.held, event_count = b.event_count + 1, "
    "last_event_at = GREATEST(b.last_event_at, EXCLUDED.last_event_at)"
)
AUDIT_SQL = (
    "INSERT INTO audit_auditrecord (action, actor_type, actor_id, user_id, resource_type, resource_id, details, "
    "request_id, created_at) VALUES ('ingest_event', 'api_key', %s, %s, 'wallet_event', %s, %s::jsonb, '', %s)"
)
EARLIER_SQL = (
    "SELECT public_id, wallet_id, event_type, amount, currency, provider_event_id, metadata::text, occurred_at, "
    "created_at FROM events_walletevent WHERE public_id = %s OR (provider = %s AND provider_event_id = %s) "
    "OR idempotency_key = %s"
)


@lru_cache(maxsize=1024)
def _secret(token: str) -> bytes:
    return _FERNET.decrypt(token.encode())


def _db() -> psycopg.Connection:
    connection = getattr(_local, "connection", None)
    if connection is None or connection.closed:
        connection = _local.connection = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
    return connection


def _answer(start_response: Callable, status: str, body: dict[str, Any], *extra: tuple[str, str]) -> list[bytes]:
    data = json.dumps(body, separators=(",", ":")).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *extra])
    return [data]


def _error(start_response: Callable, status: str, code: str) -> list[bytes]:
    headers = [("WWW-Authenticate", "HMAC-SHA256")] if status.startswith("401") else []
    return _answer(start_response, status, {"error": {"code": code, "message": code}}, *headers)


def _event(public_id, wallet_id, provider, event_type, amount, currency, pe_id, metadata, occurred_at, created_at):
    return {
        "id": str(public_id),
        "wallet_id": wallet_id,
        "provider": provider,
        "event_type": event_type,
        "amount": f"{amount:.2f}",
        "currency": currency,
        "provider_event_id": pe_id,
        "metadata": metadata,
        "occurred_at": occurred_at.isoformat().replace("+00:00", "Z"),
        "created_at": created_at.isoformat().replace("+00:00", "Z"),
    }


def application(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
    path = environ.get("RAW_URI", environ["PATH_INFO"]).split("?", 1)[0]
    if path == "/healthz":
        return _answer(start_response, "200 OK", {"status": "ok", "database": "ok"})
    match = _PATH.match(path)
    if match is None or environ["REQUEST_METHOD"] != "POST":
        return _error(start_response, "404 Not Found", "not_found")
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    header = environ.get("HTTP_AUTHORIZATION", "")
    if not header.lower().startswith("hmac-sha256 "):
        return _error(start_response, "401 Unauthorized", "missing_credentials")
    fields = dict(_HEADER.findall(header))
    if len(fields) != 4:
        return _error(start_response, "401 Unauthorized", "malformed_credentials")
    db = _db()
    key = db.execute(KEY_SQL, (fields["keyId"],)).fetchone()  # 1
    if key is None:
        return _error(start_response, "401 Unauthorized", "unknown_key")
    if not key[2]:
        return _error(start_response, "401 Unauthorized", "revoked_key")
    if abs(time.time() - int(fields["ts"])) > 300:
        return _error(start_response, "401 Unauthorized", "stale_timestamp")
    message = "\n".join(
        (
            "HMAC-SHA256",
            fields["ts"],
            fields["nonce"],
            "POST",
            path,
            environ.get("QUERY_STRING", ""),
            hashlib.sha256(body).hexdigest(),
        )
    )
    expected = hmac.new(_secret(key[0]), message.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, fields["signature"]):
        return _error(start_response, "401 Unauthorized", "bad_signature")
    if db.execute(NONCE_SQL, (fields["keyId"], fields["nonce"])).rowcount != 1:  # 2
        return _error(start_response, "401 Unauthorized", "replayed_nonce")
    if "events:write" not in json.loads(key[1]):
        return _error(start_response, "403 Forbidden", "insufficient_scope")
    wallet_public_id = match.group(1)
    wallet = db.execute(WALLET_SQL, (uuid.UUID(wallet_public_id),)).fetchone()  # 3
    if wallet is None:
        return _error(start_response, "404 Not Found", "not_found")
    wallet_pk, provider, user_id = wallet
    item = json.loads(body)
    event_id = uuid.UUID(item["event_id"]) if item.get("event_id") else uuid.uuid4()
    amount = Decimal(item["amount"])
    occurred_at = dt.datetime.fromisoformat(item["occurred_at"].replace("Z", "+00:00"))
    pe_id, idempotency_key = item.get("provider_event_id"), environ.get("HTTP_IDEMPOTENCY_KEY")
    metadata = item.get("metadata") or {}
    now = dt.datetime.now(dt.UTC)
    with db.transaction():
        inserted = db.execute(  # 4
            INSERT_SQL,
            (
                event_id,
                wallet_pk,
                provider,
                item["event_type"],
                amount,
                item["currency"],
                pe_id,
                idempotency_key,
                json.dumps(metadata),
                occurred_at,
                now,
            ),
        ).fetchone()
        if inserted is not None:
            db.execute(  # 5
                BUCKET_SQL, (wallet_pk, item["currency"], occurred_at, occurred_at, item["event_type"], amount)
            )
            details = {"wallet_id": wallet_public_id, "event_type": item["event_type"], "amount": str(amount)}
            db.execute(AUDIT_SQL, (fields["keyId"], user_id, str(event_id), json.dumps(details), now))  # 6
    # 7: COMMIT
    if inserted is not None:
        event = (event_id, wallet_public_id, provider, item["event_type"], amount, item["currency"], pe_id)
        return _answer(start_response, "201 Created", _event(*event, metadata, occurred_at, now))
    earlier = db.execute(EARLIER_SQL, (event_id, provider, pe_id, idempotency_key)).fetchone()
    public_id, earlier_wallet, event_type, earlier_amount, currency, earlier_pe, meta, at, created = earlier
    same = (earlier_wallet, event_type, earlier_amount, currency, earlier_pe, at) == (
        wallet_pk,
        item["event_type"],
        amount,
        item["currency"],
        pe_id,
        occurred_at,
    )
    if not same:
        return _answer(
            start_response,
            "409 Conflict",
            {"error": {"code": "event_conflict", "message": "conflict", "existing_event_id": str(public_id)}},
        )
    event = (public_id, wallet_public_id, provider, event_type, earlier_amount, currency, earlier_pe)
    return _answer(
        start_response, "200 OK", _event(*event, json.loads(meta), at, created), ("Idempotent-Replayed", "true")
    )
