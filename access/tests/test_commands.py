"""create_api_client (the contract's command), create_demo_client and prune_nonces."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from access.models import ApiClient, ApiKey, ApiNonce
from access.services import secret_decrypt
from amani import signing
from audit.models import AuditRecord


def run(*args: str) -> tuple[str, str]:
    stdout, stderr = StringIO(), StringIO()
    call_command(*args, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def signed_get(key_id: str, secret: str, path: str = "/healthz"):
    header = signing.authorization_header(key_id=key_id, secret=secret, method="GET", path=path)
    return Client().get(path, headers={"Authorization": header})


def test_create_api_client_json_prints_only_key_id_secret_and_scopes(db):
    stdout, _ = run("create_api_client", "billing", "--scopes", "wallets:read,events:write", "--json")
    payload = json.loads(stdout)
    assert set(payload) == {"key_id", "secret", "scopes"}
    assert payload["scopes"] == ["wallets:read", "events:write"]
    key = ApiKey.objects.select_related("client").get(key_id=payload["key_id"])
    assert key.client.name == "billing"
    assert key.client.scopes == ["wallets:read", "events:write"]
    assert key.is_usable()
    # Encrypted at rest, and the printed secret is the one the server verifies with.
    assert payload["secret"] not in key.secret_encrypted
    assert secret_decrypt(key.secret_encrypted) == payload["secret"]


def test_create_api_client_audits_the_client_and_its_key(db):
    stdout, _ = run("create_api_client", "ledger", "--scopes", "events:read", "--json")
    key_id = json.loads(stdout)["key_id"]
    actions = set(AuditRecord.objects.filter(actor_type="command").values_list("action", "resource_id"))
    client = ApiClient.objects.get(name="ledger")
    assert ("create_api_client", str(client.pk)) in actions
    assert ("create_api_key", key_id) in actions
    assert not AuditRecord.objects.filter(details__icontains=json.loads(stdout)["secret"]).exists()


def test_create_api_client_human_output_shows_key_id_and_secret_once(db):
    stdout, _ = run("create_api_client", "ops", "--scopes", "wallets:read")
    key = ApiKey.objects.get(client__name="ops")
    assert f"key id: {key.key_id}" in stdout
    assert f"secret: {secret_decrypt(key.secret_encrypted)}" in stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scopes", "wallets:read,admin:all"], "unknown: admin:all"),
        (["--scopes", ""], "Choose one or more"),
        (["--scopes", "wallets:READ"], "unknown: wallets:READ"),
    ],
)
def test_create_api_client_rejects_unknown_scopes(db, args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        run("create_api_client", "bad", *args)
    assert not ApiClient.objects.filter(name="bad").exists()


def test_create_api_client_rejects_a_duplicate_name(db):
    run("create_api_client", "twice", "--scopes", "wallets:read", "--json")
    with pytest.raises(CommandError, match="already exists"):
        run("create_api_client", "twice", "--scopes", "wallets:read", "--json")
    assert ApiKey.objects.filter(client__name="twice").count() == 1


def test_create_api_client_requires_scopes(db):
    with pytest.raises(CommandError):
        run("create_api_client", "noscopes")


def test_create_demo_client_creates_then_rotates_the_demo_key(db, settings):
    settings.DEBUG = True
    first, _ = run("create_demo_client", "--base-url", "http://127.0.0.1:9000")
    demo = ApiClient.objects.get(name="demo")
    assert sorted(demo.scopes) == sorted(["wallets:read", "wallets:write", "events:read", "events:write"])
    key_id = re.search(r"key id: (\S+)", first).group(1)
    secret = re.search(r"secret: (\S+)", first).group(1)
    assert secret_decrypt(ApiKey.objects.get(key_id=key_id).secret_encrypted) == secret
    assert "curl -s -H 'Authorization: HMAC-SHA256 keyId=" in first
    assert "http://127.0.0.1:9000/api/v1/wallets" in first
    assert f'HmacAuth("{key_id}", "{secret}")' in first

    second, _ = run("create_demo_client")
    new_key_id = re.search(r"key id: (\S+)", second).group(1)
    assert new_key_id != key_id
    assert ApiClient.objects.filter(name="demo").count() == 1
    assert ApiKey.objects.get(key_id=key_id).revoked_at is not None
    assert ApiKey.objects.get(key_id=new_key_id).is_usable()


@pytest.mark.urls("amani.tests.urls")
def test_curl_line_printed_by_create_demo_client_is_a_valid_signed_request(db, settings):
    settings.DEBUG = True
    stdout, _ = run("create_demo_client")
    authorization = re.search(r"-H 'Authorization: ([^']+)'", stdout).group(1)
    response = Client().get("/api/v1/wallets", headers={"Authorization": authorization})
    assert response.status_code == 200, response.content
    assert Client().get("/api/v1/wallets", headers={"Authorization": authorization}).status_code == 401


def test_create_demo_client_refuses_to_run_with_debug_off(db, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG=true"):
        run("create_demo_client")
    assert not ApiClient.objects.filter(name="demo").exists()


def test_prune_nonces_deletes_only_nonces_past_the_window(db):
    now = timezone.now()
    ApiNonce.objects.create(key_id="ak_1", nonce="a" * 16, seen_at=now - timedelta(seconds=601))
    ApiNonce.objects.create(key_id="ak_1", nonce="b" * 16, seen_at=now - timedelta(seconds=299))
    stdout, _ = run("prune_nonces")
    assert stdout.strip() == "deleted=1"
    assert list(ApiNonce.objects.values_list("nonce", flat=True)) == ["b" * 16]
