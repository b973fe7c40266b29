"""Structured JSON logs: one access line per request, request ids end to end, no secrets."""

from __future__ import annotations

import io
import json
import logging
import re
import uuid

import pytest
from django.conf import settings
from django.http import HttpResponse
from django.test import RequestFactory
from pythonjsonlogger.json import JsonFormatter

from amani.logging import AccessLogMiddleware, RequestIdFilter
from amani.middleware import RequestIdMiddleware
from audit.models import AuditRecord
from wallets.models import Wallet
from wallets.tests.factories import wallet_body


@pytest.fixture
def log_lines():
    """Every record logged (any logger, DEBUG and up), formatted as production formats it."""
    config = settings.LOGGING["formatters"]["json"]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(fmt=config["fmt"], rename_fields=config["rename_fields"]))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]

    lines.raw = stream.getvalue  # type: ignore[attr-defined]
    yield lines
    root.removeHandler(handler)
    root.setLevel(old_level)


def access_lines(lines: list[dict]) -> list[dict]:
    return [line for line in lines if line["logger"] == "amani.access"]


def test_one_json_access_line_per_request_with_the_contracted_fields(signed_client, log_lines):
    response = signed_client.post("/api/v1/wallets", wallet_body(), headers={"X-Request-ID": "req-abc.123"})
    assert response.status_code == 201
    assert response["X-Request-ID"] == "req-abc.123"
    (line,) = access_lines(log_lines())
    assert line["message"] == "request"
    assert line["level"] == "INFO"
    assert line["request_id"] == "req-abc.123"
    assert line["key_id"] == signed_client.key_id
    assert line["method"] == "POST"
    assert line["route"] == "/api/v1/wallets"
    assert line["status"] == 201
    assert line["outcome"] == "created"
    assert isinstance(line["latency_ms"], int | float) and line["latency_ms"] >= 0
    assert "time" in line


def test_outcome_is_the_replay_or_the_error_code(signed_client, log_lines):
    body = wallet_body()
    signed_client.post("/api/v1/wallets", body)
    signed_client.post("/api/v1/wallets", body)
    signed_client.post("/api/v1/wallets", dict(body, user_id=str(uuid.uuid4())))
    signed_client.get(f"/api/v1/wallets/{uuid.uuid4()}")
    outcomes = [line["outcome"] for line in access_lines(log_lines())]
    assert outcomes == ["created", "replayed", "wallet_claimed", "not_found"]


def test_a_refused_request_logs_the_claimed_key_id_and_the_auth_code(signed_client, log_lines):
    signed_client.secret = "wrong-secret"
    response = signed_client.get("/api/v1/wallets")
    assert response.status_code == 401
    (line,) = access_lines(log_lines())
    assert (line["status"], line["outcome"], line["key_id"]) == (401, "bad_signature", signed_client.key_id)


def test_request_id_is_generated_when_absent_or_unusable_and_reaches_the_audit_record(signed_client):
    body = wallet_body()
    response = signed_client.post("/api/v1/wallets", body, headers={"X-Request-ID": "bad id with spaces"})
    assert response.status_code == 201
    generated = response["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    record = AuditRecord.objects.get(resource_id=response.json()["id"])
    assert record.request_id == generated
    assert record.actor_id == signed_client.key_id


def test_given_request_id_is_written_into_the_audit_record(signed_client):
    response = signed_client.post("/api/v1/wallets", wallet_body(), headers={"X-Request-ID": "trace-42"})
    assert AuditRecord.objects.get(resource_id=response.json()["id"]).request_id == "trace-42"


def test_every_record_logged_during_a_request_carries_its_request_id(log_lines):
    def view(request):
        logging.getLogger("amani.somewhere").warning("inside the request")
        return HttpResponse("ok")

    stack = RequestIdMiddleware(AccessLogMiddleware(view))
    stack(RequestFactory().get("/healthz", headers={"X-Request-ID": "rid-7"}))
    logging.getLogger("amani.somewhere").warning("after the request")
    lines = log_lines()
    inside = next(line for line in lines if line["message"] == "inside the request")
    after = next(line for line in lines if line["message"] == "after the request")
    assert inside["request_id"] == "rid-7"
    assert after["request_id"] == ""


def test_secrets_signatures_and_metadata_values_never_reach_the_logs(signed_client, log_lines):
    metadata_value = "kyc-document-NG-8842-secret-value"
    body = wallet_body(metadata={"kyc_document": metadata_value})
    ok = signed_client.post("/api/v1/wallets", body)
    assert ok.status_code == 201
    good_signature = ok.wsgi_request.META["HTTP_AUTHORIZATION"].rsplit('signature="', 1)[1][:64]

    real_secret = signed_client.secret
    signed_client.secret = "attacker-guess-0000"
    bad = signed_client.post("/api/v1/wallets", wallet_body(metadata={"kyc_document": metadata_value}))
    assert bad.status_code == 401
    bad_header = bad.wsgi_request.META["HTTP_AUTHORIZATION"]
    bad_signature = bad_header.rsplit('signature="', 1)[1][:64]
    signed_client.secret = real_secret
    # A validation error echoing the body must not log it either.
    signed_client.post("/api/v1/wallets", {"user_id": metadata_value, "metadata": {"x": metadata_value}})

    text = log_lines.raw()
    assert len(access_lines(log_lines())) == 3
    for needle in (real_secret, good_signature, bad_signature, bad_header, metadata_value, "HMAC-SHA256"):
        assert needle not in text
    assert Wallet.objects.get(public_id=ok.json()["id"]).metadata == {"kyc_document": metadata_value}


def test_django_request_errors_logged_after_the_middleware_keep_the_request_id(log_lines):
    request = RequestFactory().get("/api/v1/wallets")
    request.request_id = "rid-500"
    logging.getLogger("django.request").error("Internal Server Error", extra={"request": request, "status_code": 500})
    (line,) = [line for line in log_lines() if line["logger"] == "django.request"]
    assert line["request_id"] == "rid-500"
