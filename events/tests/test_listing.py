"""GET /api/v1/wallets/{wallet_id}/events: keyset pages, filters, and index-only cost."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from urllib.parse import quote

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from events.models import WalletEvent
from events.selectors import wallet_event_list
from events.tests.factories import WalletEventFactory
from testing import roles
from wallets.tests.factories import WalletFactory

pytestmark = pytest.mark.django_db

BASE = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def url(wallet, **params) -> str:
    query = "&".join(f"{name}={quote(str(value))}" for name, value in params.items())
    return f"/api/v1/wallets/{wallet.public_id}/events" + (f"?{query}" if query else "")


def walk(client, wallet, **params) -> list[dict]:
    """Every page, following next_cursor; asserts the last page (and only it) has none."""
    seen: list[dict] = []
    cursor = None
    while True:
        response = client.get(url(wallet, **params, **({"cursor": cursor} if cursor else {})))
        assert response.status_code == 200, response.content
        body = response.json()
        seen += body["results"]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
        assert len(body["results"]) == params.get("limit", 100)


@pytest.fixture
def history():
    """300 events: many share an occurred_at (ties), types rotate; plus another wallet's events."""
    wallet = WalletFactory()
    types = ["deposit", "withdrawal", "fee", "hold"]
    events = [
        WalletEventFactory(wallet=wallet, occurred_at=BASE + dt.timedelta(minutes=n // 3), event_type=types[n % 4])
        for n in range(300)
    ]
    WalletEventFactory.create_batch(5, occurred_at=BASE)
    return wallet, events


def expected_order(events):
    return [str(e.public_id) for e in sorted(events, key=lambda e: (e.occurred_at, e.id), reverse=True)]


def test_cursor_walk_returns_each_event_once_in_order(signed_client, history):
    wallet, events = history
    seen = walk(signed_client, wallet, limit=7)
    assert [e["id"] for e in seen] == expected_order(events)


def test_default_page_is_100_and_ties_are_newest_recorded_first(signed_client, history):
    wallet, events = history
    body = signed_client.get(url(wallet)).json()
    assert len(body["results"]) == 100 and body["next_cursor"]
    first_minute = [e for e in events if e.occurred_at == max(x.occurred_at for x in events)]
    assert [e["id"] for e in body["results"][: len(first_minute)]] == [
        str(e.public_id) for e in sorted(first_minute, key=lambda e: e.id, reverse=True)
    ]


def test_last_page_has_null_cursor(signed_client, history):
    wallet, _ = history
    body = signed_client.get(url(wallet, limit=1000)).json()
    assert len(body["results"]) == 300 and body["next_cursor"] is None


def test_filters_are_inclusive_and_combine(signed_client, history):
    wallet, events = history
    after, before = BASE + dt.timedelta(minutes=10), BASE + dt.timedelta(minutes=20)
    seen = walk(
        signed_client,
        wallet,
        limit=5,
        event_type="fee",
        occurred_after=after.isoformat(),
        occurred_before=before.isoformat().replace("+00:00", "Z"),
    )
    wanted = [e for e in events if e.event_type == "fee" and after <= e.occurred_at <= before]
    assert wanted and [e["id"] for e in seen] == expected_order(wanted)
    assert {e["occurred_at"] for e in seen} >= {after.isoformat().replace("+00:00", "Z")}


def test_bound_with_an_offset_is_the_same_instant(signed_client, history):
    wallet, events = history
    bound = (BASE + dt.timedelta(minutes=99)).astimezone(dt.timezone(dt.timedelta(hours=3))).isoformat()
    seen = walk(signed_client, wallet, occurred_after=bound)
    assert len(seen) == sum(e.occurred_at >= BASE + dt.timedelta(minutes=99) for e in events)


def test_empty_filter_value_means_no_filter(signed_client, history):
    wallet, _ = history
    assert len(signed_client.get(url(wallet, event_type="", limit=1000)).json()["results"]) == 300


def test_representation_in_the_list(signed_client):
    wallet = WalletFactory(provider="paystack")
    event = WalletEventFactory(wallet=wallet, amount="12.5", currency="KWD", metadata={"a": [1]})
    (item,) = signed_client.get(url(wallet)).json()["results"]
    assert item == {
        "id": str(event.public_id),
        "wallet_id": str(wallet.public_id),
        "provider": "paystack",
        "event_type": "deposit",
        "amount": "12.500",
        "currency": "KWD",
        "provider_event_id": event.provider_event_id,
        "metadata": {"a": [1]},
        "occurred_at": "2026-11-20T14:02:18Z",
        "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
    }


def test_empty_history(signed_client):
    assert signed_client.get(url(WalletFactory())).json() == {"results": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("limit", "0"),
        ("limit", "1001"),
        ("limit", "ten"),
        ("cursor", "not-a-cursor"),
        ("event_type", "payout"),
        ("occurred_after", "2026-11-01T00:00:00"),
        ("occurred_after", "yesterday"),
        ("occurred_before", "2026-13-01T00:00:00Z"),
    ],
)
def test_bad_query_parameter_is_400_naming_it(signed_client, history, param, value):
    wallet, _ = history
    response = signed_client.get(url(wallet, **{param: value}))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert param in error["fields"]


def test_cursor_is_bound_to_wallet_and_filters(signed_client, history):
    wallet, _ = history
    cursor = signed_client.get(url(wallet, limit=10)).json()["next_cursor"]
    assert signed_client.get(url(wallet, limit=10, cursor=cursor)).status_code == 200
    other = WalletFactory()
    for target, params in ((other, {}), (wallet, {"event_type": "fee"})):
        response = signed_client.get(url(target, limit=10, cursor=cursor, **params))
        assert response.status_code == 400
        assert "cursor" in response.json()["error"]["fields"]


def test_unknown_wallet_is_404(signed_client):
    response = signed_client.get(f"/api/v1/wallets/{uuid.uuid4()}/events")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")


def test_scope_events_read_is_required(signed_client_for):
    response = signed_client_for(["events:write", "wallets:read"]).get(url(WalletFactory()))
    assert (response.status_code, response.json()["error"]["code"]) == (403, "insufficient_scope")


# --- page 1,000 costs what page 1 costs -------------------------------------------------------


def _page_plan(wallet, *, cursor, **filters) -> tuple[dict, str | None]:
    with CaptureQueriesContext(connection) as queries:
        page = wallet_event_list(wallet=wallet, limit=100, cursor=cursor, **filters)
    (select,) = [q["sql"] for q in queries if q["sql"].startswith("SELECT") and "events_walletevent" in q["sql"]]
    with connection.cursor() as db:
        db.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + select)
        plan = db.fetchone()[0]
    plan = plan if isinstance(plan, list) else json.loads(plan)
    return plan[0]["Plan"], page.next_cursor


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _scan(plan: dict) -> dict:
    (scan,) = [node for node in _nodes(plan) if "Scan" in node["Node Type"]]
    return scan


def test_page_1000_uses_the_index_and_reads_about_what_page_1_reads():
    """EXPLAIN ANALYZE of the real page queries on a 100,100-event wallet (and 20,000 other events)."""
    wallet, other = WalletFactory(), WalletFactory()
    with connection.cursor() as cursor:
        for target, count in ((wallet, 100_100), (other, 20_000)):
            cursor.execute(
                f"INSERT INTO {WalletEvent._meta.db_table} (public_id, wallet_id, provider, event_type, amount, "  # noqa: S608
                "currency, provider_event_id, metadata, occurred_at, created_at) "
                "SELECT gen_random_uuid(), %s, 'fincra', 'deposit', 1, 'NGN', 'bulk_' || %s || '_' || n, '{}', "
                "%s::timestamptz - n * interval '1 second', now() FROM generate_series(1, %s) n",
                [target.pk, target.pk, BASE, count],
            )
    roles.analyze(WalletEvent._meta.db_table)  # as the owner (testing.roles)

    first_plan, cursor_value = _page_plan(wallet, cursor=None)
    # Walk to page 1,000 through the selector (cursor per page, as a client would).
    for _ in range(998):
        cursor_value = wallet_event_list(wallet=wallet, limit=100, cursor=cursor_value).next_cursor
    deep_plan, _ = _page_plan(wallet, cursor=cursor_value)

    for plan in (first_plan, deep_plan):
        scan = _scan(plan)
        assert scan["Node Type"] in ("Index Scan", "Index Only Scan")
        assert scan["Index Name"] == "ix_event_wallet_occurred"
        assert not any(node["Node Type"] == "Sort" for node in _nodes(plan))
    first_rows = _scan(first_plan)["Actual Rows"] + _scan(first_plan).get("Rows Removed by Filter", 0)
    deep_rows = _scan(deep_plan)["Actual Rows"] + _scan(deep_plan).get("Rows Removed by Filter", 0)
    assert first_rows == 101  # limit + 1 to know whether a next page exists
    assert deep_rows <= first_rows + 5
    assert _scan(deep_plan)["Shared Hit Blocks"] + _scan(deep_plan).get("Shared Read Blocks", 0) < 50

    # A filtered page starts its range scan at the upper bound, on the same index.
    filtered, _ = _page_plan(
        wallet,
        cursor=None,
        event_type="deposit",
        occurred_after=BASE - dt.timedelta(days=1),
        occurred_before=BASE - dt.timedelta(seconds=50_000),
    )
    assert _scan(filtered)["Index Name"] == "ix_event_wallet_occurred"
    assert _scan(filtered)["Actual Rows"] == 101
