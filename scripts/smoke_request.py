#!/usr/bin/env python3
"""Signed requests against a running server, as a caller would make them (CI smoke, `make run` check).

    scripts/smoke_request.py --base-url http://127.0.0.1:8000 --key-id ak_... --secret ...
    manage.py create_api_client smoke --scopes ... --json | scripts/smoke_request.py --base-url URL

Exits 0 when every check passes, 1 otherwise (each failure is printed).
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests

from amani.signing import HmacAuth

failures: list[str] = []


def check(name: str, response: requests.Response, status: int, code: str | None = None) -> dict:
    body = response.json() if response.headers.get("Content-Type", "").startswith("application/json") else {}
    got_code = body.get("error", {}).get("code") if isinstance(body, dict) else None
    ok = response.status_code == status and (code is None or got_code == code)
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {response.status_code} {got_code or ''}".rstrip())
    if not ok:
        failures.append(f"{name}: expected {status} {code or ''}, got {response.status_code} {response.text[:300]}")
    return body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--key-id")
    parser.add_argument("--secret")
    parser.add_argument("--full", action="store_true", help="also ingest an event and read it back and the balance")
    args = parser.parse_args()
    if not (args.key_id and args.secret):
        credentials = json.load(sys.stdin)  # create_api_client --json
        args.key_id, args.secret = credentials["key_id"], credentials["secret"]
    base = args.base_url.rstrip("/")
    session = requests.Session()
    session.auth = HmacAuth(args.key_id, args.secret)
    timeout = 10

    check("GET /healthz", requests.get(f"{base}/healthz", timeout=timeout), 200)
    check("GET /api/v1/wallets (signed)", session.get(f"{base}/api/v1/wallets", timeout=timeout), 200)
    wallet = {"user_id": str(uuid.uuid4()), "provider": "fincra", "provider_account_id": f"smoke_{uuid.uuid4().hex}"}
    created = check(
        "POST /api/v1/wallets (signed)", session.post(f"{base}/api/v1/wallets", json=wallet, timeout=timeout), 201
    )
    if created.get("id"):
        wallet_url = f"{base}/api/v1/wallets/{created['id']}"
        check("GET /api/v1/wallets/{id}", session.get(wallet_url, timeout=timeout), 200)
        if args.full:
            event = {
                "event_type": "deposit",
                "amount": "1500.00",
                "currency": "NGN",
                "provider_event_id": f"smoke_evt_{uuid.uuid4().hex}",
                "occurred_at": "2026-11-20T14:02:18Z",
            }
            check(
                "POST .../events/ingest", session.post(f"{wallet_url}/events/ingest", json=event, timeout=timeout), 201
            )
            check("GET .../events", session.get(f"{wallet_url}/events", timeout=timeout), 200)
            balance = check("GET .../balance", session.get(f"{wallet_url}/balance", timeout=timeout), 200)
            ledgers = [entry.get("ledger") for entry in balance.get("balances", [])]
            if "balances" in balance and ledgers != ["1500.00"]:
                failures.append(f"balance: expected one NGN ledger of 1500.00, got {balance}")

    # The very same signed request twice: the nonce is spent after the first one.
    prepared = session.prepare_request(requests.Request("GET", f"{base}/api/v1/wallets?limit=1"))
    check("signed request, first time", session.send(prepared, timeout=timeout), 200)
    check("same request replayed", session.send(prepared, timeout=timeout), 401, "replayed_nonce")
    check("unsigned request", requests.get(f"{base}/api/v1/wallets", timeout=timeout), 401, "missing_credentials")
    check("unknown path", session.get(f"{base}/api/v1/nope", timeout=timeout), 404, "not_found")
    # A percent-encoded path is signed as sent (gunicorn's RAW_URI), so this is a 404, not a 401.
    check(
        "encoded path id", session.get(f"{base}/api/v1/wallets/%7Bnot%20a%20uuid%7D", timeout=timeout), 404, "not_found"
    )
    check("schema", requests.get(f"{base}/api/v1/schema", timeout=timeout), 200)

    for failure in failures:
        print(f"FAIL {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
