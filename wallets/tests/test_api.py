"""The Wallets section of API.md, through signed HTTP requests."""

import re
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditRecord
from wallets.models import Wallet
from wallets.tests.factories import WalletFactory, wallet_body

pytestmark = pytest.mark.django_db

URL = "/api/v1/wallets"
USER = "6f1c1a52-8d3e-4c1e-9a57-1b2f3c4d5e6f"
OTHER_USER = "0b7d3a1e-2c4f-4e6a-8b9c-0d1e2f3a4b5c"
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def body(**overrides):
    """API.md's example registration: always the same user and account."""
    return wallet_body(**{"user_id": USER, "provider_account_id": "fincra_wallet_123", **overrides})


def post(client, data, key=None, **kwargs):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post(URL, data, headers=headers, **kwargs)


def assert_validation_error(response, field):
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["fields"], error


# --- the contract's table -------------------------------------------------------------


def test_new_wallet_is_201_with_the_representation(signed_client):
    response = post(signed_client, body(), key="req-1")
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response.headers
    wallet = response.json()
    assert set(wallet) == {
        "id",
        "user_id",
        "provider",
        "provider_account_id",
        "provider_customer_id",
        "metadata",
        "is_active",
        "created_at",
        "updated_at",
    }
    stored = Wallet.objects.get()
    assert wallet["id"] == str(stored.public_id)
    assert wallet["user_id"] == USER
    assert wallet["provider"] == "fincra"
    assert wallet["provider_account_id"] == "fincra_wallet_123"
    assert wallet["provider_customer_id"] == "customer_456"
    assert wallet["metadata"] == {"kyc_verified": True}
    assert wallet["is_active"] is True
    assert RFC3339.fullmatch(wallet["created_at"])
    assert RFC3339.fullmatch(wallet["updated_at"])
    assert response.headers["Location"] == f"{URL}/{wallet['id']}"


def test_omitted_provider_customer_id_is_null_and_metadata_empty(signed_client):
    response = post(signed_client, {"user_id": USER, "provider": "paystack", "provider_account_id": "p1"})
    assert response.status_code == 201
    assert response.json()["provider_customer_id"] is None
    assert response.json()["metadata"] == {}


def test_same_key_same_wallet_is_200_replayed(signed_client):
    first = post(signed_client, body(), key="req-1")
    second = post(signed_client, body(metadata={"other": 1}), key="req-1")
    assert second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert Wallet.objects.count() == 1


def test_no_key_existing_wallet_is_200_replayed(signed_client):
    first = post(signed_client, body())
    second = post(signed_client, body())
    assert second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json()["id"] == first.json()["id"]


def test_new_key_existing_wallet_is_200_replayed(signed_client):
    first = post(signed_client, body(), key="req-1")
    second = post(signed_client, body(), key="req-2")
    assert second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json()["id"] == first.json()["id"]


@pytest.mark.parametrize(
    "change",
    [{"user_id": OTHER_USER}, {"provider": "paystack"}, {"provider_account_id": "fincra_wallet_999"}],
)
def test_same_key_different_wallet_is_422(signed_client, change):
    post(signed_client, body(), key="req-1")
    response = post(signed_client, body(**change), key="req-1")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "idempotency_key_reused"
    assert "id" not in error
    assert Wallet.objects.count() == 1


def test_account_of_another_user_is_409(signed_client):
    post(signed_client, body())
    response = post(signed_client, body(user_id=OTHER_USER))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "wallet_claimed"
    response = post(signed_client, body(user_id=OTHER_USER), key="fresh-key")
    assert response.status_code == 409
    assert Wallet.objects.count() == 1


def test_audit_written_once_per_wallet_and_never_for_a_replay(signed_client):
    post(signed_client, body(), key="req-1")
    post(signed_client, body(), key="req-1")
    post(signed_client, body())
    post(signed_client, body(user_id=OTHER_USER))
    records = list(AuditRecord.objects.filter(action="register_wallet"))
    assert len(records) == 1
    assert records[0].actor_type == "api_key"
    assert records[0].actor_id == signed_client.key_id
    assert records[0].request_id


def test_request_id_reaches_the_audit_record(signed_client):
    signed_client.post(URL, body(), headers={"X-Request-ID": "trace-abc-123"})
    assert AuditRecord.objects.get(action="register_wallet").request_id == "trace-abc-123"


# --- bad input: 400 naming the field, nothing written ----------------------------------

BAD_BODIES = [
    ("user_id", {"user_id": "not-a-uuid"}),
    ("user_id", {"user_id": 12345}),
    ("user_id", {"user_id": None}),
    ("user_id", {"user_id": "6f1c1a528d3e4c1e9a571b2f3c4d5e6f0"}),
    ("provider", {"provider": "venmo"}),
    ("provider", {"provider": "FINCRA"}),
    ("provider", {"provider": 1}),
    ("provider_account_id", {"provider_account_id": ""}),
    ("provider_account_id", {"provider_account_id": "   "}),
    ("provider_account_id", {"provider_account_id": "x" * 256}),
    ("provider_account_id", {"provider_account_id": 123}),
    ("provider_account_id", {"provider_account_id": "a\u0000b"}),
    ("provider_account_id", {"provider_account_id": "\ud800"}),
    ("provider_customer_id", {"provider_customer_id": "c" * 256}),
    ("provider_customer_id", {"provider_customer_id": ["c"]}),
    ("provider_customer_id", {"provider_customer_id": "nul\u0000"}),
    ("metadata", {"metadata": []}),
    ("metadata", {"metadata": "text"}),
    ("metadata", {"metadata": None}),
    ("metadata", {"metadata": {"note": "a\u0000b"}}),
    ("metadata", {"metadata": {"k\u0000": 1}}),
    ("metadata", {"metadata": {"deep": [{"deeper": {"x": ["\u0000"]}}]}}),
]


@pytest.mark.parametrize(("field", "change"), BAD_BODIES)
def test_bad_body_field_is_400_naming_it(signed_client, field, change):
    response = post(signed_client, body(**change), key="req-1")
    assert_validation_error(response, field)
    assert Wallet.objects.count() == 0
    assert AuditRecord.objects.filter(resource_type="wallet").count() == 0


def test_missing_required_fields_are_each_named(signed_client):
    response = post(signed_client, {})
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"user_id", "provider", "provider_account_id"}


def test_big_metadata_number_written_as_json_text_is_400(signed_client):
    raw = '{"user_id": "USER", "provider": "fincra", "provider_account_id": "a", "metadata": {"n": 1e999}}'
    raw = raw.replace("USER", USER)
    assert_validation_error(signed_client.post(URL, raw), "metadata")
    assert Wallet.objects.count() == 0


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\tkey", "line\x7f"])
def test_bad_idempotency_key_is_400_naming_the_header(signed_client, key):
    response = post(signed_client, body(), key=key)
    assert_validation_error(response, "Idempotency-Key")
    assert Wallet.objects.count() == 0


def test_longest_printable_idempotency_key_is_accepted(signed_client):
    key = "K" * 254 + "~"
    assert post(signed_client, body(), key=key).status_code == 201
    assert Wallet.objects.get().idempotency_key == key


def test_header_and_body_errors_are_reported_together(signed_client):
    response = post(signed_client, body(provider="venmo"), key="")
    assert response.status_code == 400
    assert {"provider", "Idempotency-Key"} <= set(response.json()["error"]["fields"])


@pytest.mark.parametrize("raw", ["[]", '"text"', "{not json", "null"])
def test_body_that_is_not_a_json_object_is_invalid_json(signed_client, raw):
    response = signed_client.post(URL, raw)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    assert Wallet.objects.count() == 0


def test_other_content_type_is_415(signed_client):
    response = signed_client.post(URL, "user_id=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


# --- scopes ---------------------------------------------------------------------------


def test_register_needs_wallets_write(signed_client_for):
    client = signed_client_for(["wallets:read"])
    response = post(client, body())
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"
    assert Wallet.objects.count() == 0


def test_reading_needs_wallets_read(signed_client_for):
    wallet = WalletFactory()
    client = signed_client_for(["wallets:write"])
    assert client.get(URL).status_code == 403
    assert client.get(f"{URL}/{wallet.public_id}").status_code == 403


def test_unsigned_request_is_401(client):
    response = client.post(URL, body(), content_type="application/json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_credentials"


# --- GET one --------------------------------------------------------------------------


def test_get_wallet(signed_client):
    created = post(signed_client, body()).json()
    response = signed_client.get(f"{URL}/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created


def test_get_unknown_wallet_is_404(signed_client):
    response = signed_client.get(f"{URL}/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("wallet_id", ["123", "not-a-uuid", "6f1c1a52-8d3e-4c1e-9a57-1b2f3c4d5e6"])
def test_get_non_uuid_id_is_404(signed_client, wallet_id):
    WalletFactory()
    response = signed_client.get(f"{URL}/{wallet_id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_internal_pk_is_not_an_id(signed_client):
    wallet = WalletFactory()
    assert signed_client.get(f"{URL}/{wallet.pk}").status_code == 404


# --- GET list -------------------------------------------------------------------------


def test_list_is_newest_first_with_cursor_pages(signed_client):
    wallets = WalletFactory.create_batch(5)
    expected = [str(w.public_id) for w in reversed(wallets)]
    seen = []
    url = f"{URL}?limit=2"
    while True:
        response = signed_client.get(url)
        assert response.status_code == 200
        page = response.json()
        assert set(page) == {"results", "next_cursor"}
        seen += [w["id"] for w in page["results"]]
        if page["next_cursor"] is None:
            break
        url = f"{URL}?limit=2&cursor={page['next_cursor']}"
    assert seen == expected


def test_list_last_page_has_null_cursor(signed_client):
    WalletFactory.create_batch(2)
    page = signed_client.get(f"{URL}?limit=2").json()
    assert len(page["results"]) == 2
    assert page["next_cursor"] is None


def test_list_filters(signed_client):
    user_id = uuid.uuid4()
    mine = WalletFactory(user_id=user_id, provider="fincra")
    mine_inactive = WalletFactory(user_id=user_id, provider="paystack", is_active=False)
    WalletFactory(provider="paystack")

    def ids(query):
        response = signed_client.get(f"{URL}?{query}")
        assert response.status_code == 200, response.content
        return {w["id"] for w in response.json()["results"]}

    assert ids(f"user_id={user_id}") == {str(mine.public_id), str(mine_inactive.public_id)}
    assert ids(f"user_id={user_id}&provider=paystack") == {str(mine_inactive.public_id)}
    assert ids(f"user_id={user_id}&is_active=true") == {str(mine.public_id)}
    assert ids(f"user_id={user_id}&is_active=false") == {str(mine_inactive.public_id)}
    assert len(ids("provider=paystack")) == 2
    assert len(ids("is_active=true")) == 2
    assert len(ids("user_id=&provider=&is_active=")) == 3


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("user_id=123", "user_id"),
        ("user_id=not-a-uuid", "user_id"),
        ("provider=venmo", "provider"),
        ("is_active=yes", "is_active"),
        ("is_active=1", "is_active"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("cursor=forged", "cursor"),
    ],
)
def test_list_bad_query_is_400_naming_the_parameter(signed_client, query, field):
    assert_validation_error(signed_client.get(f"{URL}?{query}"), field)


def test_cursor_is_bound_to_its_filters(signed_client):
    user_id = uuid.uuid4()
    WalletFactory.create_batch(3, user_id=user_id)
    cursor = signed_client.get(f"{URL}?user_id={user_id}&limit=1").json()["next_cursor"]
    assert cursor
    assert signed_client.get(f"{URL}?user_id={user_id}&limit=1&cursor={cursor}").status_code == 200
    assert_validation_error(signed_client.get(f"{URL}?limit=1&cursor={cursor}"), "cursor")
    assert_validation_error(signed_client.get(f"{URL}?user_id={user_id}&provider=fincra&cursor={cursor}"), "cursor")


def test_schema_documents_the_wallet_endpoints(client):
    response = client.get("/api/v1/schema?format=json")
    assert response.status_code == 200
    schema = response.json()
    post_op = schema["paths"]["/api/v1/wallets"]["post"]
    assert {"201", "200", "400", "409", "422"} <= set(post_op["responses"])
    assert post_op["responses"]["200"]["headers"]["Idempotent-Replayed"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in post_op["parameters"])
    assert "404" in schema["paths"]["/api/v1/wallets/{wallet_id}"]["get"]["responses"]


# --- cost -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_register_query_counts_over_authentication(signed_client, django_assert_max_num_queries):
    with CaptureQueriesContext(connection) as baseline:
        signed_client.get(f"{URL}/{uuid.uuid4()}")  # authentication + one SELECT
    authentication = len(baseline) - 1
    # New or replayed: one statement after authentication.
    with django_assert_max_num_queries(authentication + 1):
        assert post(signed_client, body(), key="k1").status_code == 201
    with django_assert_max_num_queries(authentication + 1):
        assert post(signed_client, body(), key="k1").status_code == 200
    with django_assert_max_num_queries(authentication + 1):
        assert post(signed_client, body()).status_code == 200
