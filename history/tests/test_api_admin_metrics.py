"""GET /api/v1/history/head, the admin's view of the chain, and the seal-lag gauges."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families

from audit.models import AuditRecord
from events.models import WalletEvent
from history.models import Block
from history.services import history_seal, history_verify
from history.tests.support import write_records

pytestmark = pytest.mark.django_db(transaction=True)
HEAD = "/api/v1/history/head"


def test_head_before_anything_is_sealed_is_404(signed_client_for):
    response = signed_client_for(["events:read"]).get(HEAD)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_head_is_the_latest_block(signed_client_for):
    client = signed_client_for(["events:read"])
    write_records(events=2, audits=1)
    history_seal()
    write_records(events=1, audits=0)
    sealed = history_seal()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(HEAD)
    assert response.status_code == 200
    body = response.json()
    block = Block.objects.get(number=2)
    assert body == {
        "block": 2,
        "hash": sealed.hash,
        "sealed_at": block.sealed_at.isoformat().replace("+00:00", "Z"),
        "records": WalletEvent.objects.count() + AuditRecord.objects.count(),  # the API client's creation too
    }
    assert re.fullmatch(r"[0-9a-f]{64}", body["hash"])
    # Authentication's own statements (key, nonce, sometimes last_used_at and the nonce prune) aside: one.
    own = [q["sql"] for q in queries if "amani_api" not in q["sql"] and q["sql"] not in ("BEGIN", "COMMIT")]
    assert len(own) == 1 and "history_block" in own[0] and "digests" not in own[0]  # never the record index


def test_head_needs_events_read(signed_client_for):
    response = signed_client_for(["wallets:read"]).get(HEAD)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"


def test_the_block_admin_shows_the_head_and_the_last_verification(admin_client):
    write_records()
    sealed = history_seal()
    history_verify()
    page = admin_client.get(reverse("admin:history_block_changelist")).content.decode()
    assert f"Head: block {sealed.number}" in page and sealed.hash in page
    assert "Last verification: <strong>passed</strong>" in page
    detail = admin_client.get(reverse("admin:history_block_change", args=[sealed.number]))
    assert detail.status_code == 200 and sealed.hash in detail.content.decode()
    assert admin_client.get(reverse("admin:history_block_add")).status_code == 403


def test_the_block_admin_says_when_nothing_was_verified(admin_client):
    page = admin_client.get(reverse("admin:history_block_changelist")).content.decode()
    assert "Nothing has been sealed yet" in page and "No verification has run yet" in page


def gauges(client) -> dict[str, float]:
    text = client.get("/metrics").content.decode()
    return {
        family.name: family.samples[0].value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("amani_history_")
    }


def test_metrics_report_the_seal_lag_until_the_sealer_catches_up(client):
    assert gauges(client) == {"amani_history_seal_lag_seconds": 0.0, "amani_history_unsealed_records": 0.0}
    write_records(events=2, audits=1)
    before = gauges(client)
    assert before["amani_history_unsealed_records"] == 3 and before["amani_history_seal_lag_seconds"] > 0
    history_seal()
    assert gauges(client) == {"amani_history_seal_lag_seconds": 0.0, "amani_history_unsealed_records": 0.0}
