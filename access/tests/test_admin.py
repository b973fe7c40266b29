"""Admin: create a client (first key's secret shown once), issue keys, revoke keys, set expiry."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from access.models import ApiClient, ApiKey
from access.services import api_client_create, secret_decrypt
from audit.models import AuditRecord

ALL = ["wallets:read", "wallets:write", "events:read", "events:write"]


def shown_secrets(response) -> list[tuple[str, str]]:
    html = response.content.decode()
    return re.findall(r'<code class="key-id">([^<]+)</code></td>\s*<td><code class="secret">([^<]+)</code>', html)


@pytest.fixture
def existing(db):
    client, issued = api_client_create(name="payouts", scopes=["wallets:read"])
    return client, issued


def test_adding_a_client_issues_its_first_key_and_shows_the_secret_once(admin_client, caplog):
    caplog.set_level(logging.DEBUG)
    response = admin_client.post(
        reverse("admin:access_apiclient_add"),
        {"name": "billing", "scopes": ["wallets:read", "events:write"], "is_active": "on"},
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    [(key_id, secret)] = shown_secrets(response)
    client = ApiClient.objects.get(name="billing")
    assert client.scopes == ["wallets:read", "events:write"]
    key = client.keys.get()
    assert key.key_id == key_id
    assert secret_decrypt(key.secret_encrypted) == secret
    assert secret not in key.secret_encrypted
    # Audited as the staff user, and the secret is in no log line and no audit row.
    audited = AuditRecord.objects.filter(actor_type="staff", actor_id="admin")
    assert set(audited.values_list("action", flat=True)) == {"create_api_client", "create_api_key"}
    assert not any(secret in record.getMessage() or secret in str(record.__dict__) for record in caplog.records)
    assert not AuditRecord.objects.filter(details__icontains=secret).exists()

    # Never shown again: not on the change page, the key list or the key page.
    for url in (
        reverse("admin:access_apiclient_change", args=[client.pk]),
        reverse("admin:access_apikey_changelist"),
        reverse("admin:access_apikey_change", args=[key.pk]),
    ):
        page = admin_client.get(url)
        assert page.status_code == 200
        assert secret not in page.content.decode()
        assert key.secret_encrypted not in page.content.decode()


def test_adding_a_client_with_an_unknown_or_duplicate_name_shows_form_errors(admin_client, existing):
    response = admin_client.post(reverse("admin:access_apiclient_add"), {"name": "payouts", "scopes": ["wallets:read"]})
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    response = admin_client.post(reverse("admin:access_apiclient_add"), {"name": "new", "scopes": []})
    assert "This field is required" in response.content.decode()
    assert not ApiClient.objects.filter(name="new").exists()


def test_adding_an_inactive_client(admin_client):
    response = admin_client.post(reverse("admin:access_apiclient_add"), {"name": "off", "scopes": ["events:read"]})
    assert response.status_code == 200
    assert shown_secrets(response)
    assert ApiClient.objects.get(name="off").is_active is False


def test_issue_key_button_adds_a_key_and_shows_its_secret_once(admin_client, existing):
    client, first = existing
    change_page = admin_client.get(reverse("admin:access_apiclient_change", args=[client.pk]))
    issue_url = reverse("admin:access_apiclient_issue_key", args=[client.pk])
    assert issue_url in change_page.content.decode()
    assert admin_client.get(issue_url).status_code == 405  # only a POST (with CSRF) issues a key

    response = admin_client.post(issue_url)
    [(key_id, secret)] = shown_secrets(response)
    assert key_id != first.key_id
    key = ApiKey.objects.get(key_id=key_id)
    assert key.client == client and key.is_usable()
    assert secret_decrypt(key.secret_encrypted) == secret
    assert AuditRecord.objects.filter(action="create_api_key", resource_id=key_id, actor_type="staff").exists()


def test_issue_keys_action_on_several_clients(admin_client, existing):
    other, _ = api_client_create(name="ledger", scopes=ALL)
    response = admin_client.post(
        reverse("admin:access_apiclient_changelist"),
        {"action": "issue_keys", "_selected_action": [existing[0].pk, other.pk]},
    )
    shown = dict(shown_secrets(response))
    assert len(shown) == 2
    for key_id, secret in shown.items():
        assert secret_decrypt(ApiKey.objects.get(key_id=key_id).secret_encrypted) == secret


def test_revoke_action_revokes_keys_through_the_audited_service(admin_client, existing):
    _, issued = existing
    response = admin_client.post(
        reverse("admin:access_apikey_changelist"),
        {"action": "revoke_keys", "_selected_action": [issued.key.pk]},
        follow=True,
    )
    assert "Revoked 1 key(s)." in response.content.decode()
    issued.key.refresh_from_db()
    assert issued.key.revoked_at is not None
    assert AuditRecord.objects.filter(action="revoke_api_key", resource_id=issued.key_id, actor_type="staff").exists()


def test_revoke_button_on_the_key_page_revokes_it(admin_client, existing):
    _, issued = existing
    page = admin_client.get(reverse("admin:access_apikey_change", args=[issued.key.pk])).content.decode()
    revoke_url = reverse("admin:access_apikey_revoke", args=[issued.key.pk])
    assert revoke_url in page
    assert admin_client.get(revoke_url).status_code == 405
    response = admin_client.post(revoke_url, follow=True)
    assert f"Revoked key {issued.key_id}." in response.content.decode()
    assert revoke_url not in response.content.decode()  # no button once revoked
    issued.key.refresh_from_db()
    assert issued.key.revoked_at is not None
    assert (
        AuditRecord.objects.filter(action="revoke_api_key", resource_id=issued.key_id, actor_type="staff").count() == 1
    )
    admin_client.post(revoke_url)  # revoking again changes nothing
    assert AuditRecord.objects.filter(action="revoke_api_key", resource_id=issued.key_id).count() == 1


def test_changing_scopes_and_deactivating_a_client_is_audited(admin_client, existing):
    client, _ = existing
    response = admin_client.post(
        reverse("admin:access_apiclient_change", args=[client.pk]),
        {
            "scopes": ["wallets:read", "wallets:write"],
            "keys-TOTAL_FORMS": "1",
            "keys-INITIAL_FORMS": "1",
            "keys-MIN_NUM_FORMS": "0",
            "keys-MAX_NUM_FORMS": "1000",
            "keys-0-id": client.keys.get().pk,
            "keys-0-client": client.pk,
            "keys-0-expires_at_0": "",
            "keys-0-expires_at_1": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    client.refresh_from_db()
    assert client.scopes == ["wallets:read", "wallets:write"]
    assert client.is_active is False
    record = AuditRecord.objects.get(action="update_api_client", resource_id=str(client.pk))
    assert record.details["after"] == {"scopes": ["wallets:read", "wallets:write"], "is_active": False}


def test_key_expiry_set_from_the_clients_page_is_audited(admin_client, existing):
    client, issued = existing
    when = timezone.localtime(timezone.now() + timedelta(days=7))
    response = admin_client.post(
        reverse("admin:access_apiclient_change", args=[client.pk]),
        {
            "scopes": ["wallets:read"],
            "is_active": "on",
            "keys-TOTAL_FORMS": "1",
            "keys-INITIAL_FORMS": "1",
            "keys-MIN_NUM_FORMS": "0",
            "keys-MAX_NUM_FORMS": "1000",
            "keys-0-id": issued.key.pk,
            "keys-0-client": client.pk,
            "keys-0-expires_at_0": when.strftime("%Y-%m-%d"),
            "keys-0-expires_at_1": when.strftime("%H:%M:%S"),
        },
    )
    assert response.status_code == 302
    issued.key.refresh_from_db()
    assert abs((issued.key.expires_at - when).total_seconds()) < 1
    record = AuditRecord.objects.get(action="expire_api_key", resource_id=issued.key_id)
    assert record.actor_type == "staff"
    assert not AuditRecord.objects.filter(action="update_api_client").exists()  # nothing else changed


def test_key_expiry_is_the_only_editable_key_field_and_is_audited(admin_client, existing):
    _, issued = existing
    url = reverse("admin:access_apikey_change", args=[issued.key.pk])
    page = admin_client.get(url).content.decode()
    assert 'name="expires_at_0"' in page
    for field in ("key_id", "revoked_at", "last_used_at", "secret_encrypted", "client"):
        assert f'name="{field}"' not in page
    when = timezone.localtime(timezone.now() + timedelta(days=30))
    response = admin_client.post(
        url, {"expires_at_0": when.strftime("%Y-%m-%d"), "expires_at_1": when.strftime("%H:%M:%S"), "key_id": "ak_x"}
    )
    assert response.status_code == 302
    issued.key.refresh_from_db()
    assert issued.key.key_id != "ak_x"
    assert issued.key.expires_at is not None
    assert abs((issued.key.expires_at - when).total_seconds()) < 1
    assert AuditRecord.objects.filter(action="expire_api_key", resource_id=issued.key_id).exists()


def test_keys_and_clients_cannot_be_added_or_deleted_directly(admin_client, existing):
    client, issued = existing
    assert admin_client.get(reverse("admin:access_apikey_add")).status_code == 403
    assert admin_client.get(reverse("admin:access_apikey_delete", args=[issued.key.pk])).status_code == 403
    assert admin_client.get(reverse("admin:access_apiclient_delete", args=[client.pk])).status_code == 403


def test_staff_without_change_permission_cannot_issue_keys(client, django_user_model, existing):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_apiclient"))
    client.force_login(viewer)
    response = client.post(reverse("admin:access_apiclient_issue_key", args=[existing[0].pk]))
    assert response.status_code == 403
    assert existing[0].keys.count() == 1
