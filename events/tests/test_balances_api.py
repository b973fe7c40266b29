"""GET /api/v1/wallets/{wallet_id}/balance as the contract fixes it."""

from __future__ import annotations

import uuid

import pytest

from events.tests.factories import record
from wallets.tests.factories import WalletFactory


@pytest.fixture
def history(wallet) -> None:
    for event_type, amount, currency, occurred_at in [
        ("deposit", "1500.00", "NGN", "2026-11-01T08:00:00Z"),
        ("fee", "12.50", "NGN", "2026-11-01T09:30:00Z"),
        ("hold", "200.00", "NGN", "2026-11-02T10:00:00Z"),
        ("withdrawal", "300.25", "NGN", "2026-11-02T12:00:00Z"),
        ("transfer_in", "1000.00", "NGN", "2026-11-03T00:00:00Z"),
        ("release", "50.00", "NGN", "2026-11-03T14:00:00Z"),
        ("transfer_out", "400.00", "NGN", "2026-11-03T18:00:00Z"),
        ("refund", "12.50", "NGN", "2026-11-04T09:00:00Z"),
        ("deposit", "10.125", "KWD", "2026-11-01T23:59:59.999999Z"),
        ("hold", "2.500", "KWD", "2026-11-02T11:00:00Z"),
        ("fee", "0.375", "KWD", "2026-11-03T13:00:00Z"),
        ("withdrawal", "20", "KWD", "2026-11-04T09:00:00Z"),
    ]:
        record(wallet, event_type, amount, currency, occurred_at)


def url(wallet, query: str = "") -> str:
    return f"/api/v1/wallets/{wallet.public_id}/balance" + (f"?{query}" if query else "")


def test_balance_as_of_an_instant_in_the_middle(signed_client, wallet, history):
    response = signed_client.get(url(wallet, "as_of=2026-11-03T15:00:00%2B01:00"))
    assert response.status_code == 200
    assert response.json() == {
        "wallet_id": str(wallet.public_id),
        "as_of": "2026-11-03T14:00:00Z",
        "balances": [
            {
                "currency": "KWD",
                "ledger": "9.750",
                "held": "2.500",
                "available": "7.250",
                "event_count": 3,
                "last_event_at": "2026-11-03T13:00:00Z",
            },
            {
                "currency": "NGN",
                "ledger": "2187.25",
                "held": "150.00",
                "available": "2037.25",
                "event_count": 6,
                "last_event_at": "2026-11-03T14:00:00Z",
            },
        ],
    }


def test_backdated_event_shows_in_later_balances(signed_client, wallet, history):
    before = signed_client.get(url(wallet, "as_of=2026-11-03T14:00:00Z")).json()["balances"][1]
    record(wallet, "deposit", "0.75", "NGN", "2026-11-01T12:00:00Z")
    after = signed_client.get(url(wallet, "as_of=2026-11-03T14:00:00Z")).json()["balances"][1]
    assert (before["ledger"], before["event_count"]) == ("2187.25", 6)
    assert (after["ledger"], after["available"], after["event_count"]) == ("2188.00", "2038.00", 7)


def test_negative_balances_render_with_the_currency_digits(signed_client, wallet, history):
    body = signed_client.get(url(wallet, "as_of=2026-11-05T00:00:00Z")).json()
    kwd = body["balances"][0]
    assert (kwd["ledger"], kwd["held"], kwd["available"]) == ("-10.250", "2.500", "-12.750")


def test_zero_digit_currency_has_no_point(signed_client, db):
    wallet = WalletFactory()
    record(wallet, "deposit", "1500", "UGX", "2026-11-01T08:00:00Z")
    record(wallet, "hold", "1500", "UGX", "2026-11-01T09:00:00Z")
    body = signed_client.get(url(wallet, "as_of=2026-11-02T00:00:00Z")).json()
    assert body["balances"] == [
        {
            "currency": "UGX",
            "ledger": "1500",
            "held": "1500",
            "available": "0",
            "event_count": 2,
            "last_event_at": "2026-11-01T09:00:00Z",
        }
    ]


def test_no_balances_before_the_first_event(signed_client, wallet, history):
    response = signed_client.get(url(wallet, "as_of=2026-10-31T23:59:59Z"))
    assert response.status_code == 200
    assert response.json()["balances"] == []


def test_as_of_defaults_to_now(signed_client, wallet, history):
    body = signed_client.get(url(wallet)).json()
    assert body["as_of"].endswith("Z")
    assert [(b["currency"], b["event_count"]) for b in body["balances"]] == [("KWD", 4), ("NGN", 8)]


def test_unencoded_plus_in_the_offset_is_understood(signed_client, wallet, history):
    body = signed_client.get(url(wallet, "as_of=2026-11-03T15:00:00+01:00")).json()
    assert body["as_of"] == "2026-11-03T14:00:00Z"


@pytest.mark.parametrize(
    "as_of",
    [
        "2026-11-03T14:00:00",
        "2026-11-03",
        "yesterday",
        "2026-13-03T14:00:00Z",
        "1e9",
        "",
        "0001-01-01T00:00:00%2B01:00",
    ],
)
def test_bad_as_of_is_400_naming_the_field(signed_client, wallet, history, as_of):
    response = signed_client.get(url(wallet, f"as_of={as_of}"))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert list(error["fields"]) == ["as_of"]


def test_unknown_wallet_is_404(signed_client, db):
    response = signed_client.get(f"/api/v1/wallets/{uuid.uuid4()}/balance")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_non_uuid_wallet_is_404(signed_client, db):
    response = signed_client.get("/api/v1/wallets/123/balance")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_needs_events_read(signed_client_for, wallet, history):
    response = signed_client_for(["wallets:read", "events:write"]).get(url(wallet))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"


def test_unsigned_is_401(client, wallet, history):
    response = client.get(url(wallet))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_credentials"


def test_nanosecond_as_of_is_kept_to_the_microsecond(signed_client, wallet, history):
    body = signed_client.get(url(wallet, "as_of=2026-11-03T14:00:00.123456789Z")).json()
    assert body["as_of"] == "2026-11-03T14:00:00.123456Z"
    assert body["balances"][1]["event_count"] == 6


def test_post_to_balance_is_405(signed_client, wallet, history):
    response = signed_client.post(url(wallet), {})
    assert (response.status_code, response.json()["error"]["code"]) == (405, "method_not_allowed")


def test_get_provider_balances_is_405(signed_client, wallet, history):
    response = signed_client.get(f"/api/v1/wallets/{wallet.public_id}/provider-balances")
    assert (response.status_code, response.json()["error"]["code"]) == (405, "method_not_allowed")
