"""API.md's balances, checked over real HTTP (testing.contract): the balance, provider balances and
reconciliation."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from events.tests.factories import event_body
from testing.contract import error_of, parse_rfc3339

BALANCE_FIELDS = {"currency", "ledger", "held", "available", "event_count", "last_event_at"}

# Only so that the test database is set up: no test writes through the ORM (its
# transaction would be invisible to the server); everything goes through HTTP.
pytestmark = pytest.mark.django_db


def test_balance_reconstructed_from_events(api):
    wallet = api.wallet()
    empty = api.get(f"wallets/{wallet['id']}/balance")
    assert empty.status_code == 200
    assert set(empty.json()) == {"wallet_id", "as_of", "balances"}
    assert empty.json()["balances"] == []
    parse_rfc3339(empty.json()["as_of"])

    for event_type, amount, day in [
        ("deposit", "1000.00", 1),
        ("transfer_in", "700.00", 2),
        ("refund", "50.50", 3),
        ("withdrawal", "100.00", 4),
        ("transfer_out", "120.25", 5),
        ("fee", "30.25", 6),
        ("hold", "300.00", 7),
        ("release", "100.00", 8),
    ]:
        body = event_body(event_type=event_type, amount=amount, occurred_at=f"2026-11-0{day}T12:00:00Z")
        assert api.ingest(wallet["id"], body).status_code == 201
    api.ingest(wallet["id"], event_body(currency="UGX", amount="5000", occurred_at="2026-11-09T00:00:00Z"))

    body = api.get(f"wallets/{wallet['id']}/balance").json()
    assert body["wallet_id"] == wallet["id"]
    by_currency = {entry["currency"]: entry for entry in body["balances"]}
    assert set(by_currency) == {"NGN", "UGX"}
    ngn = by_currency["NGN"]
    assert set(ngn) == BALANCE_FIELDS
    # 1000 + 700 + 50.50 - 100 - 120.25 - 30.25 = 1500.00; held 300 - 100 = 200.
    assert (ngn["ledger"], ngn["held"], ngn["available"], ngn["event_count"]) == ("1500.00", "200.00", "1300.00", 8)
    assert parse_rfc3339(ngn["last_event_at"]) == dt.datetime(2026, 11, 8, 12, tzinfo=dt.UTC)
    assert (by_currency["UGX"]["ledger"], by_currency["UGX"]["available"]) == ("5000", "5000")

    # as_of is inclusive, with an offset; before the first event there is nothing.
    at = api.get(f"wallets/{wallet['id']}/balance", params={"as_of": "2026-11-02T13:00:00+01:00"}).json()
    assert [(b["currency"], b["ledger"], b["event_count"]) for b in at["balances"]] == [("NGN", "1700.00", 2)]
    assert parse_rfc3339(at["as_of"]) == dt.datetime(2026, 11, 2, 12, tzinfo=dt.UTC)
    before = api.get(f"wallets/{wallet['id']}/balance", params={"as_of": "2026-10-01T00:00:00Z"}).json()
    assert before["balances"] == []


def test_negative_balance_is_rendered_with_a_minus(api):
    wallet = api.wallet()
    api.ingest(wallet["id"], event_body(event_type="withdrawal", amount="1.500", currency="KWD"))
    entry = api.get(f"wallets/{wallet['id']}/balance").json()["balances"][0]
    assert (entry["ledger"], entry["held"], entry["available"]) == ("-1.500", "0.000", "-1.500")


@pytest.mark.parametrize("as_of", ["2026-11-20T10:00:00", "soon", "2026-13-01T00:00:00Z"])
def test_bad_as_of_is_400(api, as_of):
    wallet = api.wallet()
    error = error_of(api.get(f"wallets/{wallet['id']}/balance", params={"as_of": as_of}), 400, "validation_error")
    assert "as_of" in error["fields"]


def test_provider_balance_and_reconciliation(api):
    wallet = api.wallet()
    error_of(api.get(f"wallets/{wallet['id']}/reconciliation?currency=NGN"), 404, "not_found")
    api.ingest(wallet["id"], event_body(amount="1500.00", occurred_at="2026-11-20T10:00:00Z"))
    api.ingest(wallet["id"], event_body(event_type="hold", amount="200.00", occurred_at="2026-11-20T10:30:00Z"))
    api.ingest(wallet["id"], event_body(amount="999.00", occurred_at="2026-11-20T12:00:00Z"))  # after the report

    report_body = {"currency": "NGN", "available": "1300.00", "ledger": "1500", "reported_at": "2026-11-20T11:00:00Z"}
    response = api.post(f"wallets/{wallet['id']}/provider-balances", report_body)
    assert response.status_code == 201, response.text
    report = response.json()
    assert {"id", "currency", "available", "ledger", "reported_at", "created_at"} <= set(report)
    assert uuid.UUID(report["id"])
    assert (report["currency"], report["available"], report["ledger"]) == ("NGN", "1300.00", "1500.00")
    parse_rfc3339(report["created_at"])

    recon = api.get(f"wallets/{wallet['id']}/reconciliation?currency=NGN")
    assert recon.status_code == 200, recon.text
    body = recon.json()
    assert {"currency", "reported_at", "reported", "reconstructed", "status", "difference"} <= set(body)
    assert body["currency"] == "NGN"
    assert parse_rfc3339(body["reported_at"]) == dt.datetime(2026, 11, 20, 11, tzinfo=dt.UTC)
    assert (body["reported"]["available"], body["reported"]["ledger"]) == ("1300.00", "1500.00")
    assert (body["reconstructed"]["available"], body["reconstructed"]["ledger"]) == ("1300.00", "1500.00")
    assert body["status"] == "matched"
    assert body["difference"] == {"available": "0.00", "ledger": "0.00"}

    # A later report without ledger, off by 0.01: drift, ledger difference null.
    later = {"currency": "NGN", "available": "2299.01", "reported_at": "2026-11-20T13:00:00Z"}
    assert api.post(f"wallets/{wallet['id']}/provider-balances", later).status_code == 201
    drift = api.get(f"wallets/{wallet['id']}/reconciliation?currency=NGN").json()
    assert drift["status"] == "drift"
    assert drift["difference"] == {"available": "0.01", "ledger": None}
    assert drift["reported"]["ledger"] is None


@pytest.mark.parametrize("query", ["", "?currency=ngn", "?currency=NAIRA"])
def test_reconciliation_needs_a_currency(api, query):
    wallet = api.wallet()
    body = {"currency": "NGN", "available": "1.00", "reported_at": "2026-11-20T11:00:00Z"}
    assert api.post(f"wallets/{wallet['id']}/provider-balances", body).status_code == 201
    error = error_of(api.get(f"wallets/{wallet['id']}/reconciliation{query}"), 400, "validation_error")
    assert "currency" in error["fields"]


def test_reconciliation_uses_the_latest_reported_at_not_the_latest_recorded(api):
    wallet = api.wallet()
    api.ingest(wallet["id"], event_body(amount="10.00", occurred_at="2026-11-20T10:00:00Z"))
    for available, reported_at in (("10.00", "2026-11-20T12:00:00Z"), ("99.00", "2026-11-20T11:00:00Z")):
        body = {"currency": "NGN", "available": available, "reported_at": reported_at}
        assert api.post(f"wallets/{wallet['id']}/provider-balances", body).status_code == 201
    body = api.get(f"wallets/{wallet['id']}/reconciliation?currency=NGN").json()
    assert (body["reported"]["available"], body["status"]) == ("10.00", "matched")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"available": 1300}, "available"),
        ({"available": "1e3"}, "available"),
        ({"available": "1300.000"}, "available"),
        ({"ledger": "abc"}, "ledger"),
        ({"reported_at": "2026-11-20T11:00:00"}, "reported_at"),
        ({"currency": "ngn"}, "currency"),
    ],
)
def test_bad_provider_balance_is_400(api, overrides, field):
    wallet = api.wallet()
    body = {"currency": "NGN", "available": "1300.00", "reported_at": "2026-11-20T11:00:00Z", **overrides}
    error = error_of(api.post(f"wallets/{wallet['id']}/provider-balances", body), 400, "validation_error")
    assert field in error["fields"]


def test_provider_balance_may_be_zero_or_negative(api):
    wallet = api.wallet()
    for amount in ("0.00", "-12.50"):
        body = {"currency": "NGN", "available": amount, "reported_at": "2026-11-20T11:00:00Z"}
        response = api.post(f"wallets/{wallet['id']}/provider-balances", body)
        assert response.status_code == 201, response.text
        assert response.json()["available"] == amount
