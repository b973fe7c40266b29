"""The support console: the wallet's admin page, its search, its chart and its statement download."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from amani.actors import Actor
from audit.services import audit_record
from audit.tests.support import staff_user
from events.console import TimelineFilters, wallet_search, wallet_timeline
from events.reconciliation import provider_balance_record
from events.tests.factories import record
from wallets.models import Wallet
from wallets.services import wallet_deactivate, wallet_register

pytestmark = pytest.mark.django_db

ACTOR = Actor.api_key("ak_test", "req-console-1")


@pytest.fixture
def support(client):
    client.force_login(staff_user("sam"))
    return client


@pytest.fixture
def registered_wallet() -> Wallet:
    registered_wallet = wallet_register(
        user_id=uuid.uuid4(),
        provider="fincra",
        provider_account_id="fincra_wallet_console",
        provider_customer_id="customer_console",
        actor=ACTOR,
    ).wallet
    record(registered_wallet, "deposit", "1500.00", "NGN", "2026-11-17T09:00:00Z")
    record(registered_wallet, "hold", "200.00", "NGN", "2026-11-18T10:00:00Z")
    record(registered_wallet, "fee", "25.50", "NGN", "2026-11-18T11:00:00Z")
    record(registered_wallet, "deposit", "10.125", "KWD", "2026-11-18T12:00:00Z")
    # The provider says 1300.00 available: the events say 1274.50 -> drift of 25.50.
    provider_balance_record(
        wallet=registered_wallet,
        currency="NGN",
        available=Decimal("1300.00"),
        reported_at=dt.datetime(2026, 11, 19, tzinfo=dt.UTC),
        actor=ACTOR,
    )
    return registered_wallet


def page(client, wallet, **query):
    return client.get(reverse("admin:wallets_wallet_change", args=[wallet.pk]), query)


def test_console_shows_identity_balances_drift_chart_and_timeline(support, registered_wallet):
    response = page(support, registered_wallet, chart_from="2026-11-01", chart_to="2026-11-30")
    assert response.status_code == 200
    html = response.content.decode()
    for value in (
        str(registered_wallet.public_id),
        str(registered_wallet.user_id),
        "fincra_wallet_console",
        "customer_console",
    ):
        assert f'data-copy="{value}"' in html
    console = response.context["console"]
    ngn = next(b for b in console["balances"] if b["currency"] == "NGN")
    assert (ngn["ledger"], ngn["held"], ngn["available"]) == ("1474.50", "200.00", "1274.50")
    assert next(b for b in console["balances"] if b["currency"] == "KWD")["available"] == "10.125"
    [reconciliation] = console["reconciliations"]
    assert reconciliation["status"] == "drift" and reconciliation["difference_available"] == "25.50"
    assert '<td class="amount drift">25.50</td>' in html
    assert [c["currency"] for c in console["charts"]] == ["KWD", "NGN"]
    assert 'class="report-mark drift"' in html and "<polyline" in html
    kinds = [item["row"].kind for item in console["timeline"]]
    # The registration was recorded today; the events and the report are backdated to November.
    assert kinds == ["audit", "report", "event", "event", "event", "event"]
    assert [item["amount"] for item in console["timeline"]][:4] == ["", "1300.00", "10.125", "25.50"]
    # Read-only for support: no save button, no status action.
    assert 'name="_save"' not in html and "deactivate_wallets" not in html


def test_balances_as_of_an_instant(support, registered_wallet):
    console = page(support, registered_wallet, as_of="2026-11-18T10:30").context["console"]
    assert [(b["currency"], b["available"]) for b in console["balances"]] == [("NGN", "1300.00")]


@pytest.mark.parametrize(
    "query",
    [
        {"as_of": "not-a-date"},
        {"currency": "XYZ"},
        {"currency": "ngn"},
        {"occurred_from": "2026-11-19T00:00", "occurred_to": "2026-11-18T00:00"},
        {"chart_from": "2026-13-01"},
        {"chart_to": "9999-12-31"},
        {"chart_from": "0001-01-01"},
        {"kind": "nonsense"},
        {"cursor": "tampered"},
    ],
)
def test_bad_console_input_is_a_message_never_a_500(support, registered_wallet, query):
    response = page(support, registered_wallet, **query)
    assert response.status_code == 200
    assert list(response.context["messages"]), "the bad value is reported"
    assert response.context["console"]["timeline"], "the defaults are shown"


def test_a_nul_character_in_the_console_query_is_a_400_never_a_500(support, registered_wallet):
    # amani.middleware.AdminNulCharacterMiddleware answers before the page reads its filters.
    response = page(support, registered_wallet, event_type="deposit\x00")
    assert response.status_code == 400


def test_timeline_filters(support, registered_wallet):
    def kinds(**query):
        return [
            (i["row"].kind, i["row"].title)
            for i in page(support, registered_wallet, **query).context["console"]["timeline"]
        ]

    assert kinds(kind="audit") == [("audit", "register_wallet")]
    assert kinds(event_type="deposit") == [("event", "deposit"), ("event", "deposit")]
    assert kinds(currency="KWD") == [("event", "deposit")]
    assert kinds(currency="NGN") == [
        ("report", "provider balance report"),
        ("event", "fee"),
        ("event", "hold"),
        ("event", "deposit"),
    ]
    assert kinds(occurred_from="2026-11-18T10:30", occurred_to="2026-11-18T12:00") == [
        ("event", "deposit"),
        ("event", "fee"),
    ]


def test_timeline_pages_interleave_every_source_without_gaps(registered_wallet):
    """Equal instants across sources and within one: keyset (time, source, id) walks each row once."""
    same = "2026-11-18T11:00:00Z"
    for _ in range(3):
        record(registered_wallet, "deposit", "1.00", "NGN", same)
    for n in range(3):
        provider_balance_record(
            wallet=registered_wallet,
            currency="NGN",
            available=Decimal(n),
            reported_at=dt.datetime.fromisoformat(same),
            actor=ACTOR,
        )
    everything = wallet_timeline(wallet=registered_wallet, filters=TimelineFilters(), limit=1000).rows
    for limit in (1, 2, 5):
        seen, cursor = [], None
        while True:
            timeline = wallet_timeline(wallet=registered_wallet, filters=TimelineFilters(), limit=limit, cursor=cursor)
            seen.extend(timeline.rows)
            cursor = timeline.next_cursor
            if cursor is None:
                break
        assert seen == everything
    assert [row.at for row in everything] == sorted((row.at for row in everything), reverse=True)
    assert len(everything) == (1 + 3) + (4 + 3) + 1  # reports, events, the registration's audit record


def test_console_statement_count_does_not_grow_with_history(support, registered_wallet):
    page(support, registered_wallet)  # warm caches (content types, sessions)
    with CaptureQueriesContext(connection) as small:
        page(support, registered_wallet)
    for day in range(1, 29):
        for hour in range(0, 24, 6):
            record(registered_wallet, "deposit", "1.00", "NGN", f"2026-10-{day:02d}T{hour:02d}:00:00Z")
        provider_balance_record(
            wallet=registered_wallet,
            currency="NGN",
            available=Decimal(day),
            reported_at=dt.datetime(2026, 10, day, 23, tzinfo=dt.UTC),
            actor=ACTOR,
        )
    wallet_deactivate(wallet=registered_wallet, reason="test", actor=ACTOR)
    with CaptureQueriesContext(connection) as big:
        response = page(support, registered_wallet, chart_from="2026-10-01", chart_to="2026-11-30")
    assert len(response.context["console"]["timeline"]) == 50
    assert response.context["console"]["next_url"]
    assert len(big) == len(small), [q["sql"] for q in big.captured_queries]
    assert len(small) <= 20
    assert not any("COUNT(*)" in q["sql"].upper() for q in big.captured_queries)  # no row count of anything


def test_search_lands_on_the_wallet_by_any_identifier(support, registered_wallet):
    event = record(registered_wallet, "deposit", "5.00", "NGN", "2026-11-20T09:00:00Z")
    record(registered_wallet, "deposit", "6.00", "NGN", "2026-11-20T10:00:00Z", idempotency_key="idem-evt-console")
    audit_record(
        action="note",
        actor=Actor.staff("sam", "req-find-me"),
        resource_type="wallet",
        resource_id=str(registered_wallet.public_id),
    )
    other = wallet_register(user_id=uuid.uuid4(), provider="paystack", provider_account_id="other", actor=ACTOR).wallet
    change = reverse("admin:wallets_wallet_change", args=[registered_wallet.pk])
    for term in (
        str(registered_wallet.public_id),
        str(registered_wallet.user_id).upper(),
        "fincra_wallet_console",
        "customer_console",
        str(event.public_id),
        event.provider_event_id,
        "idem-evt-console",
        "req-find-me",
        " fincra_wallet_console ",
    ):
        response = support.get(reverse("admin:wallets_wallet_changelist"), {"q": term})
        assert response.status_code == 302 and response["Location"] == change, term
    assert wallet_search(term="fincra_wallet") == []  # exact, never a substring
    assert wallet_search(term="req-console-1") == sorted(
        [registered_wallet.pk, other.pk]
    )  # one request id, two wallets
    response = support.get(reverse("admin:wallets_wallet_changelist"), {"q": "req-console-1"})
    assert response.status_code == 200
    assert {w.pk for w in response.context["cl"].result_list} == {registered_wallet.pk, other.pk}


def test_search_probes_indexes_only(registered_wallet):
    """Every branch of the search is an index probe: no sequential scan on any table."""
    from events.console import wallet_search as search

    with CaptureQueriesContext(connection) as queries:
        search(term=str(registered_wallet.public_id))
    [query] = queries.captured_queries
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + query["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Seq Scan" not in plan, plan


def test_statement_csv_download(support, registered_wallet):
    url = reverse("admin:wallets_wallet_statement", args=[registered_wallet.pk])
    response = support.get(url, {"currency": "NGN", "period_from": "2026-11-18T00:00", "period_to": ""})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][-3:] == ["ledger", "held", "available"]
    assert rows[1][2] == "opening" and rows[1][-3:] == ["1500.00", "0.00", "1500.00"]
    assert [row[2] for row in rows[2:-1]] == ["hold", "fee"]
    assert rows[-1][2] == "closing" and rows[-1][-3:] == ["1474.50", "200.00", "1274.50"]


@pytest.mark.parametrize(
    "query",
    [{"currency": "XYZ"}, {}, {"currency": "NGN", "period_from": "yesterday"},
     {"currency": "NGN", "period_from": "2026-11-19T00:00", "period_to": "2026-11-18T00:00"},
     {"currency": "NGN", "period_from": "2999-01-01T00:00"}],
)  # fmt: skip
def test_statement_csv_bad_input_returns_to_the_console_with_a_message(support, registered_wallet, query):
    response = support.get(reverse("admin:wallets_wallet_statement", args=[registered_wallet.pk]), query)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:wallets_wallet_change", args=[registered_wallet.pk])


def test_staff_with_the_status_permission_get_the_deactivate_button(client, registered_wallet):
    client.force_login(staff_user("lee", permissions=("wallets.change_wallet_status",)))
    html = page(client, registered_wallet).content.decode()
    assert 'value="deactivate_wallets"' in html
    response = client.post(
        reverse("admin:wallets_wallet_changelist"),
        {"action": "deactivate_wallets", "_selected_action": [registered_wallet.pk], "index": 0},
    )
    assert response.status_code == 200 and "Why are these wallets being deactivated?" in response.content.decode()
