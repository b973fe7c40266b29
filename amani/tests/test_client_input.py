"""Nothing a client sends is a 5xx (issue 17): one JSON depth bound for every body, record and
admin page; UTF-8 bodies only; admin URLs and filters that do not parse."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.db import connection
from django.urls import reverse

from amani.backfill import json_loads_strict
from amani.json_bounds import DOCUMENT_MAX_DEPTH, METADATA_MAX_DEPTH, json_depth_exceeds
from audit.tests.factories import AuditRecordFactory
from audit.tests.support import staff_user
from events.models import WalletEvent
from events.tests.factories import WalletEventFactory
from testing import roles
from wallets.models import Wallet
from wallets.tests.factories import WalletFactory, wallet_body

pytestmark = pytest.mark.django_db


def nested(depth: int) -> dict[str, Any]:
    """A metadata object `depth` levels deep (the object itself is level 1)."""
    value: dict[str, Any] = {"leaf": True}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def raw_nested(depth: int) -> str:
    """The JSON text of nested(depth), built without recursing."""
    return '{"a": ' * (depth - 1) + '{"leaf": true}' + "}" * (depth - 1)


def event_body(n: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "event_type": "deposit",
        "amount": "10.00",
        "currency": "NGN",
        "provider_event_id": f"bound_{n}_{uuid.uuid4().hex}",
        "occurred_at": "2026-11-20T14:02:18Z",
        **extra,
    }


def test_depth_is_counted_from_the_outermost_value():
    assert not json_depth_exceeds(nested(3), 3)
    assert json_depth_exceeds(nested(4), 3)
    assert not json_depth_exceeds([[], {"a": 1}], 2)
    assert json_depth_exceeds([[{}]], 2)
    assert not json_depth_exceeds("text", 0)


@pytest.mark.parametrize("depth", [METADATA_MAX_DEPTH + 1, 500, 916, 920, 925, 928])
def test_metadata_past_the_bound_is_400_on_every_write_path_never_500(signed_client, depth):
    """916-925 levels were a 500 on wallets (psycopg's dump recursed too deep); events took 928."""
    wallet = WalletFactory()
    body = json.dumps(wallet_body(metadata={})).replace('"metadata": {}', f'"metadata": {raw_nested(depth)}')
    response = signed_client.post("/api/v1/wallets", body)
    assert response.status_code == 400, response.content
    event = json.dumps(event_body()).replace("}", f', "metadata": {raw_nested(depth)}}}', 1)
    assert signed_client.post(f"/api/v1/wallets/{wallet.public_id}/events/ingest", event).status_code == 400
    item = json.dumps(event_body(wallet_id=str(wallet.public_id))).replace("}", f', "metadata": {raw_nested(depth)}}}')
    batch = signed_client.post("/api/v1/events/batch", f'{{"events": [{item}]}}')
    assert batch.status_code in (200, 400)
    if batch.status_code == 200:  # within the document bound: the item is refused on its field
        assert batch.json()["results"][0]["error"]["fields"]["metadata"] == [
            f"Must not nest deeper than {METADATA_MAX_DEPTH} levels."
        ]
    assert not Wallet.objects.exclude(pk=wallet.pk).exists()
    assert not WalletEvent.objects.exists()


def test_metadata_at_the_bound_is_stored_the_same_way_by_wallets_and_events(signed_client):
    metadata = nested(METADATA_MAX_DEPTH)
    created = signed_client.post("/api/v1/wallets", wallet_body(metadata=metadata))
    assert created.status_code == 201, created.content
    wallet_id = created.json()["id"]
    assert (
        signed_client.post(f"/api/v1/wallets/{wallet_id}/events/ingest", event_body(metadata=metadata)).status_code
        == 201
    )
    one_deeper = signed_client.post("/api/v1/wallets", wallet_body(metadata=nested(METADATA_MAX_DEPTH + 1)))
    assert one_deeper.json()["error"]["fields"] == {
        "metadata": [f"Must not nest deeper than {METADATA_MAX_DEPTH} levels."]
    }
    event = signed_client.post(
        f"/api/v1/wallets/{wallet_id}/events/ingest", event_body(metadata=nested(METADATA_MAX_DEPTH + 1))
    )
    assert event.json()["error"]["fields"] == one_deeper.json()["error"]["fields"]


def test_a_body_past_the_document_bound_is_invalid_json_even_in_an_ignored_field(signed_client):
    body = json.dumps(wallet_body(metadata={})).replace("}", f', "ignored": {raw_nested(DOCUMENT_MAX_DEPTH)}}}')
    response = signed_client.post("/api/v1/wallets", body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


def test_backfill_records_obey_the_same_document_bound():
    assert json_loads_strict(raw_nested(DOCUMENT_MAX_DEPTH)) == nested(DOCUMENT_MAX_DEPTH)
    with pytest.raises(ValueError, match="deeper"):
        json_loads_strict(raw_nested(DOCUMENT_MAX_DEPTH + 1))
    with pytest.raises(ValueError):
        json_loads_strict("[" * 100_000 + "]" * 100_000)


@pytest.mark.parametrize("charset", ["latin-1", "iso-8859-1", "utf-16", "ascii", "bogus"])
def test_a_body_in_another_charset_is_415(signed_client, charset):
    body = json.dumps(wallet_body(metadata={"name": "Adé"}), ensure_ascii=False).encode("latin-1")
    response = signed_client.post("/api/v1/wallets", body, content_type=f"application/json; charset={charset}")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    assert not Wallet.objects.exists()


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", "utf8"])
def test_a_utf8_charset_is_accepted(signed_client, charset):
    body = json.dumps(wallet_body(metadata={"name": "Adé"}), ensure_ascii=False).encode()
    response = signed_client.post("/api/v1/wallets", body, content_type=f"application/json; charset={charset}")
    assert response.status_code == 201, response.content
    assert response.json()["metadata"] == {"name": "Adé"}


# --- the admin ---------------------------------------------------------------------------------


@pytest.fixture
def support(client):
    client.force_login(staff_user("sam"))
    return client


@pytest.mark.parametrize(
    "url",
    [
        reverse("admin:audit_auditrecord_changelist"),
        reverse("admin:wallets_wallet_changelist"),
        reverse("admin:events_walletevent_changelist"),
    ],
)
@pytest.mark.parametrize("param", ["resource_id", "action", "provider", "q", "provider_account_id", "e"])
def test_a_nul_byte_in_an_admin_query_parameter_is_not_a_500(support, url, param):
    AuditRecordFactory()
    response = support.get(f"{url}?{param}=a%00b")
    assert response.status_code in (200, 302, 400)


@pytest.mark.parametrize("object_id", ["abc", "1%00", "99999999999999999999999"])
def test_issue_key_for_an_id_that_is_not_a_client_is_404(admin_client, object_id):
    response = admin_client.post(f"/admin/access/apiclient/{object_id}/issue-key/")
    assert response.status_code == 404


@pytest.mark.parametrize("object_id", ["abc", "1%00"])
def test_revoke_for_an_id_that_is_not_a_key_is_404(admin_client, object_id):
    assert admin_client.post(f"/admin/access/apikey/{object_id}/revoke/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_admin_pages_render_metadata_stored_before_the_bound(support):
    """Records ~900 levels deep, which the API accepted before the bound, render with a notice."""
    wallet = WalletFactory()
    event = WalletEventFactory(wallet=wallet)
    deep = raw_nested(900)  # as text: psycopg's own dump of it is what used to recurse too deep
    with roles.database_owner(), connection.cursor() as cursor:  # rows the service itself could not write
        cursor.execute("UPDATE wallets_wallet SET metadata = %s::jsonb WHERE id = %s", [deep, wallet.pk])
        # Events are append-only (history's trigger): stored that deep as an old row would have been.
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("UPDATE events_walletevent SET metadata = %s::jsonb WHERE id = %s", [deep, event.pk])
        cursor.execute("SET session_replication_role = DEFAULT")
        cursor.execute(
            "INSERT INTO audit_auditrecord (action, actor_type, actor_id, resource_type, resource_id, details, "
            "request_id, created_at) VALUES ('x', 'command', '', 'wallet', 'deep', %s::jsonb, '', now()) RETURNING id",
            [deep],
        )
        record_pk = cursor.fetchone()[0]
    notice = f"nested deeper than {DOCUMENT_MAX_DEPTH} levels: not displayed"
    for url in (
        reverse("admin:wallets_wallet_change", args=[wallet.pk]),
        reverse("admin:events_walletevent_change", args=[event.pk]),
        reverse("admin:audit_auditrecord_change", args=[record_pk]),
    ):
        response = support.get(url)
        assert response.status_code == 200, url
        assert notice in response.content.decode()


def test_admin_pages_render_metadata_within_the_bound_as_json(support):
    wallet = WalletFactory(metadata={"channel": "ussd", "tags": ["a", "b"]})
    page = support.get(reverse("admin:wallets_wallet_change", args=[wallet.pk])).content.decode()
    assert "&quot;channel&quot;: &quot;ussd&quot;" in page
