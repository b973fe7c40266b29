"""Racing identical registrations leave one row, and every racer gets its id (API.md, Wallets)."""

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from audit.models import AuditRecord
from testing.clients import SignedClient
from testing.races import race
from wallets.models import Wallet

URL = "/api/v1/wallets"
THREADS = 32


def body(user_id: str, account: str = "race_acct_1") -> dict:
    return {"user_id": user_id, "provider": "fincra", "provider_account_id": account, "metadata": {"n": 1}}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("with_key", [True, False], ids=["with-key", "without-key"])
def test_identical_requests_racing_leave_one_wallet(make_api_key, with_key):
    issued = make_api_key(["wallets:write"])
    user_id = str(uuid.uuid4())
    headers = {"Idempotency-Key": "race-key-1"} if with_key else {}

    def register(_: int):
        return SignedClient(issued.key_id, issued.secret).post(URL, body(user_id), headers=headers)

    responses = race(THREADS, register)
    assert not [r for r in responses if isinstance(r, Exception)], responses
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {200, 201}, [r.content for r in responses if r.status_code not in (200, 201)]
    assert statuses.count(201) == 1
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    assert all(r.headers.get("Idempotent-Replayed") == "true" for r in responses if r.status_code == 200)
    assert Wallet.objects.count() == 1
    assert str(Wallet.objects.get().public_id) in ids
    assert AuditRecord.objects.filter(action="register_wallet").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_users_racing_for_one_account_leave_one_owner(make_api_key):
    issued = make_api_key(["wallets:write"])
    users = [str(uuid.uuid4()), str(uuid.uuid4())]

    def register(i: int):
        return SignedClient(issued.key_id, issued.secret).post(URL, body(users[i % 2], "contested_acct"))

    responses = race(THREADS, register)
    assert not [r for r in responses if isinstance(r, Exception)], responses
    wallet = Wallet.objects.get()
    winners = [r for r in responses if r.status_code in (200, 201)]
    losers = [r for r in responses if r.status_code not in (200, 201)]
    assert {r.status_code for r in losers} <= {409}
    assert {r.json()["error"]["code"] for r in losers} <= {"wallet_claimed"}
    assert {r.json()["id"] for r in winners} == {str(wallet.public_id)}
    assert len(losers) == THREADS // 2
    assert AuditRecord.objects.filter(action="register_wallet").count() == 1


# Run in a separate interpreter: its own Django, its own database connection.
CHILD = """
import json, sys, time
import django
django.setup()
from django.db import connection
from django.test import Client
from django.test.utils import setup_test_environment
from amani import signing

setup_test_environment()
start, key_id, secret, user_id, count = float(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
client = Client()
connection.ensure_connection()
time.sleep(max(0.0, start - time.time()))
out = []
for i in range(count):
    raw = json.dumps({"user_id": user_id, "provider": "paystack", "provider_account_id": f"proc_acct_{i}"}).encode()
    auth = signing.authorization_header(key_id=key_id, secret=secret, method="POST", path="/api/v1/wallets",
                                        query="", body=raw)
    response = client.post("/api/v1/wallets", raw, content_type="application/json",
                           headers={"Authorization": auth, "Idempotency-Key": f"proc-key-{user_id}-{i}"})
    out.append([response.status_code, response.json().get("id")])
print(json.dumps(out))
"""


@pytest.mark.django_db(transaction=True)
def test_same_requests_racing_from_two_processes_leave_one_wallet_each(make_api_key):
    issued = make_api_key(["wallets:write"])
    user_id = str(uuid.uuid4())
    count = 25
    db = settings.DATABASES["default"]
    database_url = "postgres://{user}:{password}@{host}:{port}/{name}".format(
        user=db["USER"] or "postgres",
        password=db["PASSWORD"] or "",
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        name=db["NAME"],
    )
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "amani.settings.test"}
    start = str(time.time() + 4)  # both interpreters are up and connected by then
    args = [sys.executable, "-c", CHILD, start, issued.key_id, issued.secret, user_id, str(count)]
    root = Path(settings.BASE_DIR)
    children = [
        subprocess.Popen(args, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = []
    for child in children:
        stdout, stderr = child.communicate(timeout=120)
        assert child.returncode == 0, stderr
        outputs.append(json.loads(stdout.strip().splitlines()[-1]))

    for i in range(count):
        (status_a, id_a), (status_b, id_b) = outputs[0][i], outputs[1][i]
        assert sorted([status_a, status_b]) == [200, 201], (i, outputs[0][i], outputs[1][i])
        assert id_a == id_b
    assert Wallet.objects.filter(user_id=user_id).count() == count
    assert AuditRecord.objects.filter(action="register_wallet").count() == count
