"""Balances and reconciliation on the embedded SQLite database of `make run` (no DATABASE_URL).

The suite itself runs on PostgreSQL, so this runs a child process against a fresh SQLite
file: migrate, ingest through the signed API (the ingestion service and its buckets),
then read balances and reconciliation through the API and the selectors the admin and
`reconcile_balances` use. Any PostgreSQL-only SQL on those paths fails here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import json
import uuid

import django

django.setup()

from django.core.management import call_command
from django.db import NotSupportedError, connection
from django.test import Client

from amani import signing
from amani.clients import api_client_create
from events.balances import balance_buckets_verify
from events.reconciliation import DRIFT, MATCHED, reconciliation_list, wallet_reconciliation_statuses, wallets_in_status
from wallets.models import Wallet

assert connection.vendor == "sqlite", connection.vendor
call_command("migrate", verbosity=0)
_, key = api_client_create(name="sqlite-test", scopes=["wallets:write", "events:read", "events:write"])
client = Client()


def call(method, path, body=None, query=""):
    data = b"" if body is None else json.dumps(body).encode()
    header = signing.authorization_header(
        key_id=key.key_id, secret=key.secret, method=method, path=path, query=query, body=data
    )
    url = path + (f"?{query}" if query else "")
    if method == "GET":
        response = client.get(url, headers={"Authorization": header})
    else:
        response = client.post(url, data, content_type="application/json", headers={"Authorization": header})
    return response.status_code, response.json()


out = {}
wallets = []
for _ in range(2):
    body = {"user_id": str(uuid.uuid4()), "provider": "fincra", "provider_account_id": uuid.uuid4().hex}
    status, wallet = call("POST", "/api/v1/wallets", body)
    assert status == 201, wallet
    wallets.append(wallet["id"])
first, second = wallets
events = [
    ("deposit", "1500.00", "NGN", "2026-11-01T08:00:00Z"),
    ("fee", "0.10", "NGN", "2026-11-01T09:30:00Z"),
    ("fee", "0.20", "NGN", "2026-11-02T09:30:00Z"),
    ("hold", "200.00", "NGN", "2026-11-02T10:00:00Z"),
    ("deposit", "10.125", "KWD", "2026-11-02T23:59:59.999999Z"),
    ("release", "50.00", "NGN", "2026-11-03T14:00:00Z"),
    ("transfer_out", "400.00", "NGN", "2026-11-03T18:00:00Z"),
    ("refund", "0.30", "NGN", "2026-11-04T09:00:00Z"),
]
for index, (event_type, amount, currency, occurred_at) in enumerate(events):
    body = {"event_type": event_type, "amount": amount, "currency": currency, "occurred_at": occurred_at,
            "provider_event_id": f"evt_{index}"}
    status, event = call("POST", f"/api/v1/wallets/{first}/events/ingest", body)
    assert status == 201, event
body = {"event_type": "deposit", "amount": "5.00", "currency": "NGN", "occurred_at": "2026-11-01T00:00:00Z",
        "provider_event_id": "evt_other"}
status, event = call("POST", f"/api/v1/wallets/{second}/events/ingest", body)
assert status == 201, event

out["balances"] = {}
instants = ("2026-11-01T07:59:59Z", "2026-11-03T15:00:00+01:00", "2026-11-02T23:59:59.999999Z", "2026-11-03T18:00:00Z")
for as_of in (*instants, ""):
    status, body = call("GET", f"/api/v1/wallets/{first}/balance", query=f"as_of={as_of}" if as_of else "")
    assert status == 200, body
    out["balances"][as_of] = body["balances"]

reports = [
    (first, "NGN", "949.70", "1099.70", "2026-11-03T18:00:00Z"),  # matched, through 0.10 + 0.20 fees
    (first, "KWD", "10.000", None, "2026-11-03T00:00:00Z"),  # drift: the deposit of 23:59:59.999999 counts
    (second, "NGN", "5.00", None, "2026-11-01T00:00:00Z"),  # matched: its one event is at exactly reported_at
]
for wallet, currency, available, ledger, reported_at in reports:
    status, body = call("POST", f"/api/v1/wallets/{wallet}/provider-balances",
                        {"currency": currency, "available": available, "ledger": ledger, "reported_at": reported_at})
    assert status == 201, body
out["reconciliation"] = {
    currency: call("GET", f"/api/v1/wallets/{first}/reconciliation", query=f"currency={currency}")
    for currency in ("NGN", "KWD")
}
pks = {wallet: Wallet.objects.get(public_id=wallet).pk for wallet in wallets}
out["statuses"] = {
    public_id: wallet_reconciliation_statuses(wallet_pks=list(pks.values())).get(pk) for public_id, pk in pks.items()
}
out["listed"] = sorted(
    [str(r.wallet_id), r.currency, r.status, str(r.reconstructed.available)] for r in reconciliation_list()
)
out["in_status"] = {}
for status in (DRIFT, MATCHED):
    chosen = Wallet.objects.filter(pk__in=wallets_in_status(status))
    out["in_status"][status] = [str(w) for w in chosen.values_list("public_id", flat=True)]
out["wallets"] = wallets
try:
    balance_buckets_verify()
except NotSupportedError as exc:
    out["verify"] = str(exc)
print(json.dumps(out))
"""


def _child_env(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_", "TEST_DATABASE"))}
    env.update(
        DJANGO_SETTINGS_MODULE="amani.settings.base",
        DATABASE_URL=f"sqlite:///{tmp_path / 'amani.sqlite3'}",
        DEBUG="false",
        SECRET_KEY="sqlite-portability-test-secret-key-0123456789-0123456789",
        ALLOWED_HOSTS="testserver",
        LOG_LEVEL="ERROR",
        PYTHONPATH=str(ROOT),
    )
    return env


def test_balances_and_reconciliation_work_on_sqlite(tmp_path):
    env = _child_env(tmp_path)
    child = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert child.returncode == 0, child.stderr[-3000:]
    out = json.loads(child.stdout.strip().splitlines()[-1])

    def summary(balances: list[dict]) -> list[tuple]:
        return [
            (b["currency"], b["ledger"], b["held"], b["available"], b["event_count"], b["last_event_at"])
            for b in balances
        ]

    assert summary(out["balances"]["2026-11-01T07:59:59Z"]) == []
    # 15:00+01:00 is 14:00Z: the release at exactly 14:00Z counts, the 18:00Z transfer_out does not.
    assert summary(out["balances"]["2026-11-03T15:00:00+01:00"]) == [
        ("KWD", "10.125", "0.000", "10.125", 1, "2026-11-02T23:59:59.999999Z"),
        ("NGN", "1499.70", "150.00", "1349.70", 5, "2026-11-03T14:00:00Z"),
    ]
    assert summary(out["balances"]["2026-11-02T23:59:59.999999Z"]) == [
        ("KWD", "10.125", "0.000", "10.125", 1, "2026-11-02T23:59:59.999999Z"),
        ("NGN", "1499.70", "200.00", "1299.70", 4, "2026-11-02T10:00:00Z"),
    ]
    assert summary(out["balances"]["2026-11-03T18:00:00Z"])[1] == (
        "NGN",
        "1099.70",
        "150.00",
        "949.70",
        6,
        "2026-11-03T18:00:00Z",
    )
    assert summary(out["balances"][""]) == [
        ("KWD", "10.125", "0.000", "10.125", 1, "2026-11-02T23:59:59.999999Z"),
        ("NGN", "1100.00", "150.00", "950.00", 7, "2026-11-04T09:00:00Z"),
    ]

    first, second = out["wallets"]
    status, ngn = out["reconciliation"]["NGN"]
    assert (status, ngn["status"], ngn["difference"]) == (200, "matched", {"available": "0.00", "ledger": "0.00"})
    assert ngn["reconstructed"]["event_count"] == 6
    status, kwd = out["reconciliation"]["KWD"]
    assert (status, kwd["status"], kwd["difference"]) == (200, "drift", {"available": "-0.125", "ledger": None})
    assert kwd["reconstructed"]["event_count"] == 1

    # The admin column and filter, and reconcile_balances, on the same database.
    assert out["statuses"] == {first: "drift", second: "matched"}
    assert out["in_status"] == {"drift": [first], "matched": [second]}
    # SQLite keeps decimals as REAL: the values are right, their scale is not kept ("5" for 5.00).
    listed = [(wallet, currency, status, Decimal(available)) for wallet, currency, status, available in out["listed"]]
    assert listed == sorted(
        [
            (first, "KWD", "drift", Decimal("10.125")),
            (first, "NGN", "matched", Decimal("949.70")),
            (second, "NGN", "matched", Decimal("5.00")),
        ]
    )
    assert out["verify"] == "Verifying balance buckets requires PostgreSQL (this database is sqlite)."
