"""Provider balance reports and reconciliation: the service, the selector and the two endpoints."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from amani.actors import Actor
from audit.models import AuditRecord
from events.balances import wallet_balances
from events.models import ProviderBalanceReport
from events.reconciliation import DRIFT, MATCHED, provider_balance_record, reconciliation_get, reconciliation_list
from events.tests.test_balances import at, make_wallet, record


@pytest.fixture
def wallet(db):
    """NGN at 2026-11-02T12:00Z: ledger 1187.25, held 200.00, available 987.25."""
    wallet = make_wallet()
    record(wallet, "deposit", "1500.00", "NGN", "2026-11-01T08:00:00Z")
    record(wallet, "fee", "12.50", "NGN", "2026-11-01T09:30:00Z")
    record(wallet, "hold", "200.00", "NGN", "2026-11-02T10:00:00Z")
    record(wallet, "withdrawal", "300.25", "NGN", "2026-11-02T12:00:00Z")
    record(wallet, "deposit", "5000.00", "NGN", "2026-11-03T09:00:00Z")
    return wallet


def report(wallet, available, ledger=None, reported_at="2026-11-02T12:00:00Z", currency="NGN"):
    return provider_balance_record(
        wallet=wallet,
        currency=currency,
        available=Decimal(available),
        ledger=None if ledger is None else Decimal(ledger),
        reported_at=at(reported_at),
        actor=Actor.command("test"),
    )


def reports_url(wallet) -> str:
    return f"/api/v1/wallets/{wallet.public_id}/provider-balances"


def reconciliation_url(wallet, currency: str = "NGN") -> str:
    return f"/api/v1/wallets/{wallet.public_id}/reconciliation?currency={currency}"


# The selector


def test_matching_report_is_matched(wallet):
    report(wallet, "987.25", "1187.25")
    result = reconciliation_get(wallet=wallet, currency="NGN")
    assert result.status == MATCHED
    assert (result.difference_available, result.difference_ledger) == (Decimal(0), Decimal(0))
    assert (result.reconstructed.ledger, result.reconstructed.held, result.reconstructed.event_count) == (
        Decimal("1187.25"),
        Decimal("200.00"),
        4,
    )


def test_available_only_report_matches_on_available(wallet):
    report(wallet, "987.25")
    result = reconciliation_get(wallet=wallet, currency="NGN")
    assert (result.status, result.difference_ledger) == (MATCHED, None)


def test_ledger_difference_alone_is_drift(wallet):
    report(wallet, "987.25", "1190.00")
    result = reconciliation_get(wallet=wallet, currency="NGN")
    assert (result.status, result.difference_available, result.difference_ledger) == (
        DRIFT,
        Decimal(0),
        Decimal("2.75"),
    )


def test_report_in_a_currency_without_events_compares_with_zero(wallet):
    report(wallet, "-1.000", currency="KWD")
    result = reconciliation_get(wallet=wallet, currency="KWD")
    assert (result.status, result.difference_available, result.reconstructed.event_count) == (
        DRIFT,
        Decimal("-1.000"),
        0,
    )
    report(wallet, "0.000", "0.000", currency="KWD", reported_at="2026-11-02T13:00:00Z")
    assert reconciliation_get(wallet=wallet, currency="KWD").status == MATCHED


def test_latest_by_reported_at_wins_even_when_recorded_first(wallet):
    report(wallet, "987.25", reported_at="2026-11-02T12:00:00Z")
    report(wallet, "1.00", reported_at="2026-11-02T11:00:00Z")  # arrives late, about an earlier instant
    result = reconciliation_get(wallet=wallet, currency="NGN")
    assert (result.reported_at, result.status) == (at("2026-11-02T12:00:00Z"), MATCHED)


def test_backdated_event_turns_a_match_into_drift(wallet):
    report(wallet, "987.25", "1187.25")
    record(wallet, "fee", "0.25", "NGN", "2026-11-01T23:00:00Z")
    result = reconciliation_get(wallet=wallet, currency="NGN")
    assert (result.status, result.difference_available, result.difference_ledger) == (
        DRIFT,
        Decimal("0.25"),
        Decimal("0.25"),
    )


def test_no_report_is_none(wallet):
    assert reconciliation_get(wallet=wallet, currency="NGN") is None


def test_list_of_drift_covers_every_wallet_and_currency(wallet):
    other = make_wallet()
    record(other, "deposit", "7.000", "KWD", "2026-11-01T08:00:00Z")
    report(wallet, "987.25")  # matched
    report(wallet, "3.000", currency="KWD")  # drift: no KWD events
    report(other, "7.000", "7.000", currency="KWD")  # matched
    report(other, "1.00", currency="NGN")  # drift
    drift = {(r.wallet_id, r.currency) for r in reconciliation_list(status=DRIFT)}
    assert drift == {(wallet.public_id, "KWD"), (other.public_id, "NGN")}
    assert len(list(reconciliation_list())) == 4


@pytest.mark.parametrize(
    "reported_at",
    [
        "2026-11-01T07:59:59.999999Z",  # before the first event
        "2026-11-02T00:00:00Z",  # midnight: the day before from its bucket, nothing of the day yet
        "2026-11-02T11:59:59.999999Z",  # mid-day, the 12:00 withdrawal not yet
        "2026-11-02T12:00:00Z",  # exactly at an event: it counts
        "2026-11-05T00:00:00Z",  # after the last event
    ],
)
def test_single_wallet_and_bulk_reconciliation_agree(wallet, reported_at):
    # The API reads one wallet through wallet_balances; the admin and reconcile_balances read
    # every latest report in one set-based query. Both must reconstruct the same balance.
    report(wallet, "987.25", reported_at=reported_at)
    single = reconciliation_get(wallet=wallet, currency="NGN")
    [bulk] = reconciliation_list()
    assert single == bulk
    [balance] = wallet_balances(wallet=wallet, as_of=at(reported_at), currency="NGN") or [single.reconstructed]
    assert balance == single.reconstructed


def test_report_writes_its_audit_record(wallet):
    stored = report(wallet, "987.25", "1187.25")
    audit = AuditRecord.objects.get(resource_type="provider_balance_report", resource_id=str(stored.public_id))
    assert audit.details["available"] == "987.25"
    assert audit.actor_type == "command"
    assert audit.user_id == wallet.user_id


# POST /provider-balances


def test_post_report_is_201_with_the_stored_report(signed_client, wallet):
    body = {"currency": "NGN", "available": "-1300.5", "ledger": "0", "reported_at": "2026-11-02T13:00:00+01:00"}
    response = signed_client.post(reports_url(wallet), body)
    assert response.status_code == 201
    data = response.json()
    stored = ProviderBalanceReport.objects.get(public_id=data["id"])
    assert data == {
        "id": str(stored.public_id),
        "wallet_id": str(wallet.public_id),
        "currency": "NGN",
        "available": "-1300.50",
        "ledger": "0.00",
        "reported_at": "2026-11-02T12:00:00Z",
        "created_at": data["created_at"],
    }
    assert (stored.available, stored.ledger) == (Decimal("-1300.5"), Decimal(0))
    assert AuditRecord.objects.filter(resource_id=data["id"], actor_type="api_key").count() == 1


def test_post_report_without_ledger_stores_null(signed_client, wallet):
    body = {"currency": "UGX", "available": "1500", "reported_at": "2026-11-02T12:00:00Z"}
    response = signed_client.post(reports_url(wallet), body)
    assert response.status_code == 201
    assert (response.json()["available"], response.json()["ledger"]) == ("1500", None)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"available": 1300}, "available"),
        ({"available": "1.000"}, "available"),
        ({"available": "1e3"}, "available"),
        ({"available": "+1"}, "available"),
        ({"available": " 1.00"}, "available"),
        ({"available": "01.00"}, "available"),
        ({"available": "NaN"}, "available"),
        ({"available": None}, "available"),
        ({"ledger": "1."}, "ledger"),
        ({"ledger": 5}, "ledger"),
        ({"currency": "ngn"}, "currency"),
        ({"currency": "XXY"}, "currency"),
        ({"currency": 566}, "currency"),
        ({"reported_at": "2026-11-02T12:00:00"}, "reported_at"),
        ({"reported_at": "2026-11-02"}, "reported_at"),
        ({"reported_at": "2999-01-01T00:00:00Z"}, "reported_at"),
        ({"reported_at": None}, "reported_at"),
    ],
)
def test_bad_report_is_400_naming_the_field(signed_client, wallet, change, field):
    body = {"currency": "NGN", "available": "1300.00", "ledger": "1500.00", "reported_at": "2026-11-02T12:00:00Z"}
    response = signed_client.post(reports_url(wallet), {**body, **change})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert list(error["fields"]) == [field]
    assert ProviderBalanceReport.objects.count() == 0


def test_missing_fields_are_each_named(signed_client, wallet):
    response = signed_client.post(reports_url(wallet), {})
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"currency", "available", "reported_at"}


def test_report_body_must_be_a_json_object(signed_client, wallet):
    response = signed_client.post(reports_url(wallet), [1, 2])
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_json")
    response = signed_client.post(reports_url(wallet), b"{not json")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_json")


def test_report_needs_a_json_content_type(signed_client, wallet):
    response = signed_client.post(reports_url(wallet), b"{}", content_type="text/plain")
    assert (response.status_code, response.json()["error"]["code"]) == (415, "unsupported_media_type")


def test_report_for_unknown_wallet_is_404(signed_client, db):
    body = {"currency": "NGN", "available": "1.00", "reported_at": "2026-11-02T12:00:00Z"}
    response = signed_client.post(f"/api/v1/wallets/{uuid.uuid4()}/provider-balances", body)
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")


def test_report_needs_events_write(signed_client_for, wallet):
    body = {"currency": "NGN", "available": "1.00", "reported_at": "2026-11-02T12:00:00Z"}
    response = signed_client_for(["events:read"]).post(reports_url(wallet), body)
    assert (response.status_code, response.json()["error"]["code"]) == (403, "insufficient_scope")


# GET /reconciliation


def test_reconciliation_drift_body(signed_client, wallet):
    signed_client.post(
        reports_url(wallet),
        {"currency": "NGN", "available": "1000.00", "ledger": "1187.25", "reported_at": "2026-11-02T12:00:00Z"},
    )
    response = signed_client.get(reconciliation_url(wallet))
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "wallet_id": str(wallet.public_id),
        "currency": "NGN",
        "reported_at": "2026-11-02T12:00:00Z",
        "reported": {
            "id": body["reported"]["id"],
            "available": "1000.00",
            "ledger": "1187.25",
            "created_at": body["reported"]["created_at"],
        },
        "reconstructed": {
            "currency": "NGN",
            "ledger": "1187.25",
            "held": "200.00",
            "available": "987.25",
            "event_count": 4,
            "last_event_at": "2026-11-02T12:00:00Z",
        },
        "status": "drift",
        "difference": {"available": "12.75", "ledger": "0.00"},
    }


def test_reconciliation_matched_without_ledger(signed_client, wallet):
    report(wallet, "987.25")
    body = signed_client.get(reconciliation_url(wallet)).json()
    assert body["status"] == "matched"
    assert body["difference"] == {"available": "0.00", "ledger": None}
    assert body["reported"]["ledger"] is None


def test_reconciliation_without_report_is_404(signed_client, wallet):
    report(wallet, "1.000", currency="KWD")
    response = signed_client.get(reconciliation_url(wallet, "NGN"))
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")


@pytest.mark.parametrize("query", ["", "?currency=", "?currency=ngn", "?currency=ABC", "?currency=NGNN"])
def test_reconciliation_currency_is_required_and_valid(signed_client, wallet, query):
    response = signed_client.get(f"/api/v1/wallets/{wallet.public_id}/reconciliation{query}")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["currency"]


def test_reconciliation_for_unknown_wallet_is_404(signed_client, db):
    response = signed_client.get(f"/api/v1/wallets/{uuid.uuid4()}/reconciliation?currency=NGN")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")


def test_reconciliation_needs_events_read(signed_client_for, wallet):
    response = signed_client_for(["events:write"]).get(reconciliation_url(wallet))
    assert (response.status_code, response.json()["error"]["code"]) == (403, "insufficient_scope")


def test_reconciliation_is_two_queries_after_the_wallet(wallet, django_assert_num_queries):
    # The latest report, then its balance: however long the history.
    report(wallet, "987.25")
    with django_assert_num_queries(2):
        assert reconciliation_get(wallet=wallet, currency="NGN").reported_at == dt.datetime(
            2026, 11, 2, 12, tzinfo=dt.UTC
        )
