"""GET /api/v1/wallets/{wallet_id}/statement as the contract's "Wallet statement" section fixes it."""

from __future__ import annotations

import random
import uuid
from decimal import Decimal
from urllib.parse import quote

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from events.models import HELD_SIGN, LEDGER_SIGN, EventType
from events.statement import wallet_statement_entries
from events.tests.factories import record
from wallets.tests.factories import WalletFactory

HISTORY = [
    ("deposit", "1500.00", "NGN", "2026-11-01T08:00:00Z"),
    ("fee", "12.50", "NGN", "2026-11-01T09:30:00Z"),
    ("hold", "200.00", "NGN", "2026-11-02T10:00:00Z"),
    ("deposit", "7.000", "KWD", "2026-11-02T10:00:00Z"),
    ("withdrawal", "300.25", "NGN", "2026-11-02T12:00:00Z"),
    ("transfer_in", "1000.00", "NGN", "2026-11-03T00:00:00Z"),
    ("release", "50.00", "NGN", "2026-11-03T14:00:00Z"),
    ("refund", "12.50", "NGN", "2026-11-04T09:00:00Z"),
]


@pytest.fixture
def history(wallet) -> None:
    for row in HISTORY:
        record(wallet, *row)


def url(wallet, query: str) -> str:
    return f"/api/v1/wallets/{wallet.public_id}/statement?{query}"


def money(entry: dict) -> tuple[str, str, str]:
    return entry["ledger"], entry["held"], entry["available"]


def test_statement_over_a_period_opening_entries_closing(signed_client, wallet, history):
    response = signed_client.get(url(wallet, "currency=NGN&from=2026-11-02T00:00:00Z&to=2026-11-03T14:00:00Z"))
    assert response.status_code == 200
    body = response.json()
    assert body["wallet_id"] == str(wallet.public_id)
    assert (body["currency"], body["from"], body["to"]) == ("NGN", "2026-11-02T00:00:00Z", "2026-11-03T14:00:00Z")
    assert body["opening"] == {"ledger": "1487.50", "held": "0.00", "available": "1487.50"}
    assert [(e["event"]["event_type"], e["event"]["amount"]) for e in body["entries"]] == [
        ("hold", "200.00"),
        ("withdrawal", "300.25"),
        ("transfer_in", "1000.00"),
        ("release", "50.00"),
    ]
    assert [money(e) for e in body["entries"]] == [
        ("1487.50", "200.00", "1287.50"),
        ("1187.25", "200.00", "987.25"),
        ("2187.25", "200.00", "1987.25"),
        ("2187.25", "150.00", "2037.25"),
    ]
    assert body["closing"] == {"ledger": "2187.25", "held": "150.00", "available": "2037.25"}
    assert body["next_cursor"] is None
    assert body["entries"][0]["event"]["wallet_id"] == str(wallet.public_id)


def test_from_defaults_to_the_first_event_and_to_to_now(signed_client, wallet, history):
    body = signed_client.get(url(wallet, "currency=KWD")).json()
    assert body["from"] == "2026-11-02T10:00:00Z"
    assert body["to"] > "2026-11-04"
    assert body["opening"] == {"ledger": "0.000", "held": "0.000", "available": "0.000"}
    assert [money(e) for e in body["entries"]] == [("7.000", "0.000", "7.000")]
    assert body["closing"] == {"ledger": "7.000", "held": "0.000", "available": "7.000"}


def test_a_currency_without_events_is_an_empty_statement(signed_client, wallet, history):
    body = signed_client.get(url(wallet, "currency=UGX")).json()
    assert body["from"] is None
    assert body["entries"] == [] and body["next_cursor"] is None
    assert body["opening"] == body["closing"] == {"ledger": "0", "held": "0", "available": "0"}


def test_a_period_after_every_event_has_opening_equal_to_closing_and_no_entries(signed_client, wallet, history):
    body = signed_client.get(url(wallet, "currency=NGN&from=2026-11-10T00:00:00Z&to=2026-11-11T00:00:00Z")).json()
    assert body["entries"] == []
    assert body["opening"] == body["closing"] == {"ledger": "2199.75", "held": "150.00", "available": "2049.75"}


def test_bounds_are_inclusive_and_offsets_are_read(signed_client, wallet, history):
    query = "currency=NGN&from=" + quote("2026-11-02T11:00:00+01:00") + "&to=2026-11-03T00:00:00Z"
    body = signed_client.get(url(wallet, query)).json()
    assert body["from"] == "2026-11-02T10:00:00Z"
    assert [e["event"]["event_type"] for e in body["entries"]] == ["hold", "withdrawal", "transfer_in"]
    # An unencoded "+" arrives as a space: read as the sign it was.
    body = signed_client.get(url(wallet, "currency=NGN&from=2026-11-02T11:00:00+01:00")).json()
    assert body["from"] == "2026-11-02T10:00:00Z"


def expected_rows(events) -> list[tuple[uuid.UUID, Decimal, Decimal]]:
    """The brute-force statement: every event in (occurred_at, id) order with the running sums."""
    ledger = held = Decimal(0)
    rows = []
    for event in sorted(events, key=lambda e: (e.occurred_at, e.id)):
        ledger += LEDGER_SIGN.get(event.event_type, 0) * event.amount
        held += HELD_SIGN.get(event.event_type, 0) * event.amount
        rows.append((event.public_id, ledger, held))
    return rows


def walk(signed_client, wallet, query: str, limit: int) -> tuple[list[dict], list[dict]]:
    """Every page of a statement; returns the entries and each page's body."""
    entries, bodies, cursor = [], [], None
    while True:
        page_query = f"{query}&limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        response = signed_client.get(url(wallet, page_query))
        assert response.status_code == 200, response.content
        body = response.json()
        bodies.append(body)
        entries.extend(body["entries"])
        cursor = body["next_cursor"]
        if cursor is None:
            return entries, bodies


@pytest.mark.parametrize("limit", [1, 2, 3, 7])
def test_pages_through_ties_and_day_boundaries_match_the_brute_force(signed_client, limit):
    """Many events at the same instant, split across pages: each page's running balance starts right."""
    wallet = WalletFactory()
    rng = random.Random(limit)
    instants = ["2026-11-01T23:59:59Z", "2026-11-02T00:00:00Z", "2026-11-02T12:00:00Z", "2026-11-03T00:00:00Z"]
    events = [
        record(wallet, rng.choice(EventType.values), f"{rng.randint(1, 9999)}.{rng.randint(0, 99):02d}", "NGN", when)
        for when in rng.choices(instants, k=23)
    ]
    entries, bodies = walk(signed_client, wallet, "currency=NGN", limit)
    expected = expected_rows(events)
    assert [(uuid.UUID(e["event"]["id"]), Decimal(e["ledger"]), Decimal(e["held"])) for e in entries] == expected
    closing = bodies[0]["closing"]
    assert all(body["closing"] == closing and body["opening"] == bodies[0]["opening"] for body in bodies)
    assert money(entries[-1]) == (closing["ledger"], closing["held"], closing["available"])
    assert len(bodies) == -(-len(events) // limit)


def test_a_period_starting_inside_a_tie_and_a_day(signed_client):
    wallet = WalletFactory()
    events = [
        record(wallet, "deposit", f"{n}.00", "NGN", f"2026-11-0{1 + n % 3}T1{n % 2}:00:00Z") for n in range(1, 13)
    ]
    entries, bodies = walk(signed_client, wallet, "currency=NGN&from=2026-11-02T10:00:00Z", 2)
    ordered = sorted(events, key=lambda e: (e.occurred_at, e.id))
    start = "2026-11-02T10:00:00+00:00"
    expected = [
        row for row, event in zip(expected_rows(events), ordered, strict=True) if event.occurred_at.isoformat() >= start
    ]
    assert [(uuid.UUID(e["event"]["id"]), Decimal(e["ledger"])) for e in entries] == [(r[0], r[1]) for r in expected]
    before = sum(e.amount for e in events if e.occurred_at.isoformat() < "2026-11-02T10:00:00+00:00")
    assert Decimal(bodies[0]["opening"]["ledger"]) == before


def test_a_backdated_event_changes_every_later_entry_and_closing(signed_client, wallet, history):
    first = signed_client.get(url(wallet, "currency=NGN&limit=3")).json()
    record(wallet, "fee", "100.00", "NGN", "2026-11-01T12:00:00Z")  # between page 1's 2nd and 3rd entries
    second = signed_client.get(url(wallet, "currency=NGN&limit=3&cursor=" + first["next_cursor"])).json()
    assert Decimal(second["closing"]["ledger"]) == Decimal(first["closing"]["ledger"]) - 100
    # Page 2 starts from the balance through page 1's last entry as it is now: the fee is in it.
    assert second["entries"][0]["ledger"] == "1087.25"  # 1500 - 12.50 - 100 (fee) - 300.25
    third = signed_client.get(url(wallet, "currency=NGN&limit=3&cursor=" + second["next_cursor"])).json()
    assert third["next_cursor"] is None
    assert money(third["entries"][-1]) == tuple(third["closing"].values()) == tuple(second["closing"].values())


def test_a_page_costs_the_same_number_of_statements_wherever_it_is(signed_client):
    wallet = WalletFactory()
    for day in range(1, 29):
        for hour in range(0, 24, 4):
            record(wallet, "deposit", "1.00", "NGN", f"2026-10-{day:02d}T{hour:02d}:00:00Z")
    counts = []
    cursor = None
    for _ in range(30):
        query = "currency=NGN&limit=5" + (f"&cursor={cursor}" if cursor else "")
        with CaptureQueriesContext(connection) as queries:
            body = signed_client.get(url(wallet, query)).json()
        counts.append(len(queries))
        cursor = body["next_cursor"]
    # Page 1 (from = the first event): no opening to read; every later page reads the same statements.
    assert len(set(counts[1:])) == 1 and counts[1] <= counts[0] + 1
    assert counts[1] <= 12, [q["sql"] for q in queries.captured_queries]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "currency"),
        ("currency=", "currency"),
        ("currency=XYZ", "currency"),
        ("currency=ngn", "currency"),
        ("currency=NGN&from=yesterday", "from"),
        ("currency=NGN&from=2026-11-02T00:00:00", "from"),  # naive
        ("currency=NGN&to=2026-13-02T00:00:00Z", "to"),
        ("currency=NGN&from=2026-11-03T00:00:00Z&to=2026-11-02T00:00:00Z", "from"),
        ("currency=NGN&from=2999-01-01T00:00:00Z", "from"),  # after the default `to`, now
        ("currency=NGN&limit=0", "limit"),
        ("currency=NGN&limit=1001", "limit"),
        ("currency=NGN&cursor=not-a-cursor", "cursor"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(signed_client, wallet, history, query, field):
    response = signed_client.get(url(wallet, query))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["fields"]


@pytest.mark.parametrize(
    "query",
    [
        "currency=NGN&from=9999-12-31T13:00:00Z&to=9999-12-31T23:59:59.999999Z",
        "currency=NGN&from=0001-01-01T00:00:00Z&to=0001-01-01T13:00:00Z",
        "currency=NGN&from=0001-01-01T00:00:00Z",
    ],
)
def test_the_ends_of_the_calendar_are_answered_not_a_500(signed_client, wallet, history, query):
    response = signed_client.get(url(wallet, query))
    assert response.status_code in (200, 400), response.content


def test_a_cursor_is_bound_to_the_wallet_currency_and_period(signed_client, wallet, history):
    cursor = signed_client.get(url(wallet, "currency=NGN&limit=2")).json()["next_cursor"]
    other = WalletFactory()
    record(other, "deposit", "1.00", "NGN", "2026-11-01T08:00:00Z")
    for target, query in [
        (wallet, "currency=KWD"),
        (wallet, "currency=NGN&to=2026-11-05T00:00:00Z"),
        (other, "currency=NGN"),
    ]:
        response = signed_client.get(url(target, f"{query}&cursor={cursor}"))
        assert response.status_code == 400 and "cursor" in response.json()["error"]["fields"]
    tampered = cursor[:-4] + ("AAAA" if cursor[-4:] != "AAAA" else "BBBB")
    response = signed_client.get(url(wallet, f"currency=NGN&limit=2&cursor={tampered}"))
    assert response.status_code == 400 and "cursor" in response.json()["error"]["fields"]


def test_unknown_wallet_is_404_and_the_scope_is_events_read(signed_client, signed_client_for, wallet, history):
    response = signed_client.get(f"/api/v1/wallets/{uuid.uuid4()}/statement?currency=NGN")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    response = signed_client_for(["wallets:read"]).get(url(wallet, "currency=NGN"))
    assert response.status_code == 403


def test_the_csv_selector_yields_every_page_of_the_same_statement(wallet, history):
    pages = list(wallet_statement_entries(wallet=wallet, currency="NGN", page_size=3))
    assert [len(page.entries) for page in pages] == [3, 3, 1]
    assert pages[-1].entries[-1].balance == pages[0].closing


def test_the_statement_is_in_the_openapi_schema(client):
    schema = client.get("/api/v1/schema", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/wallets/{wallet_id}/statement"]["get"]
    assert operation["operationId"] == "wallet_statement"
    assert {p["name"] for p in operation["parameters"]} >= {"currency", "from", "to", "limit", "cursor"}
