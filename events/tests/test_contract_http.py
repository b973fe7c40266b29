"""API.md's events, checked over real HTTP (testing.contract): ingestion, listing, the batch, and
backfill_wallet_events run as a process."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from events.tests.factories import event_body
from testing.contract import Api, error_of, manage, parse_rfc3339
from testing.races import race

EVENT_FIELDS = {
    "id",
    "wallet_id",
    "provider",
    "event_type",
    "amount",
    "currency",
    "provider_event_id",
    "metadata",
    "occurred_at",
    "created_at",
}

# Only so that the test database is set up: no test writes through the ORM (its
# transaction would be invisible to the server); everything goes through HTTP.
pytestmark = pytest.mark.django_db


def test_ingest_201_with_exactly_the_contract_fields(api):
    wallet = api.wallet()
    body = event_body(metadata={"channel": "bank_transfer"})
    response = api.ingest(wallet["id"], body)
    assert response.status_code == 201, response.text
    event = response.json()
    assert set(event) == EVENT_FIELDS
    assert uuid.UUID(event["id"])
    assert event["wallet_id"] == wallet["id"]
    assert event["provider"] == "fincra"
    for name in ("event_type", "amount", "currency", "provider_event_id", "metadata"):
        assert event[name] == body[name]
    assert parse_rfc3339(event["occurred_at"]) == parse_rfc3339(body["occurred_at"])
    parse_rfc3339(event["created_at"])
    assert "Idempotent-Replayed" not in response.headers


def test_event_id_becomes_the_id(api):
    wallet = api.wallet()
    event_id = str(uuid.uuid4())
    response = api.ingest(wallet["id"], event_body(event_id=event_id, provider_event_id=...))
    assert response.status_code == 201
    assert response.json()["id"] == event_id
    assert response.json()["provider_event_id"] is None


@pytest.mark.parametrize("event_type", ["deposit", "withdrawal", "transfer_in", "transfer_out", "fee", "refund",
                                        "hold", "release"])  # fmt: skip
def test_every_event_type_is_accepted(api, event_type):
    wallet = api.wallet()
    assert api.ingest(wallet["id"], event_body(event_type=event_type)).json()["event_type"] == event_type


@pytest.mark.parametrize(
    ("currency", "sent", "rendered"),
    [
        ("NGN", "1500.00", "1500.00"),
        ("NGN", "1500", "1500.00"),
        ("NGN", "1500.5", "1500.50"),
        ("UGX", "1500", "1500"),
        ("KWD", "1.500", "1.500"),
        ("KWD", "1.5", "1.500"),
        ("NGN", "0.01", "0.01"),
        ("NGN", "999999999999999999.99", "999999999999999999.99"),
    ],
)
def test_amounts_render_with_the_currency_digits(api, currency, sent, rendered):
    wallet = api.wallet()
    response = api.ingest(wallet["id"], event_body(amount=sent, currency=currency))
    assert response.status_code == 201, response.text
    assert response.json()["amount"] == rendered
    listed = api.get(f"wallets/{wallet['id']}/events").json()["results"]
    assert listed[0]["amount"] == rendered
    balance = api.get(f"wallets/{wallet['id']}/balance").json()["balances"]
    assert balance[0]["ledger"] == rendered


@pytest.mark.parametrize(
    ("currency", "amount"),
    [
        ("NGN", "1e3"),
        ("NGN", " 1.00"),
        ("NGN", "1.00 "),
        ("NGN", "+1"),
        ("NGN", "-1"),
        ("NGN", ".5"),
        ("NGN", "01.00"),
        ("NGN", "1."),
        ("NGN", "NaN"),
        ("NGN", "Infinity"),
        ("NGN", "1.000"),
        ("NGN", "0"),
        ("NGN", "0.00"),
        ("NGN", "1,000.00"),
        ("NGN", "1000000000000000000"),
        ("NGN", ""),
        ("UGX", "1.0"),
        ("UGX", "1."),
        ("KWD", "1.0000"),
        ("NGN", 1500),
        ("NGN", 1500.0),
        ("NGN", None),
    ],
)
def test_bad_amount_is_400_validation_error(api, currency, amount):
    wallet = api.wallet()
    error = error_of(api.ingest(wallet["id"], event_body(amount=amount, currency=currency)), 400, "validation_error")
    assert "amount" in error["fields"]


@pytest.mark.parametrize("currency", ["ngn", "XXX1", "NAIRA", "ZZZ", "", 566])
def test_bad_currency_is_400(api, currency):
    wallet = api.wallet()
    error = error_of(api.ingest(wallet["id"], event_body(currency=currency)), 400, "validation_error")
    assert "currency" in error["fields"]


@pytest.mark.parametrize(
    "occurred_at",
    ["2026-11-20T14:02:18", "2026-11-20 14:02:18", "2026-11-20", "yesterday", 1763647338, ""],
)
def test_naive_or_unparseable_occurred_at_is_400(api, occurred_at):
    wallet = api.wallet()
    error = error_of(api.ingest(wallet["id"], event_body(occurred_at=occurred_at)), 400, "validation_error")
    assert "occurred_at" in error["fields"]


def test_occurred_at_with_an_offset_is_the_same_instant(api):
    wallet = api.wallet()
    event = api.ingest(wallet["id"], event_body(occurred_at="2026-11-20T15:02:18+01:00")).json()
    assert parse_rfc3339(event["occurred_at"]) == dt.datetime(2026, 11, 20, 14, 2, 18, tzinfo=dt.UTC)


def test_bad_event_fields_are_named(api):
    wallet = api.wallet()
    body = {"event_type": "gift", "amount": 5, "currency": "ngn", "occurred_at": "x", "provider_event_id": "p1"}
    error = error_of(api.ingest(wallet["id"], body), 400, "validation_error")
    assert {"event_type", "amount", "currency", "occurred_at"} <= set(error["fields"])


def test_provider_field_must_equal_the_wallets(api):
    wallet = api.wallet(provider="paystack")
    error = error_of(api.ingest(wallet["id"], event_body(provider="fincra")), 400, "validation_error")
    assert "provider" in error["fields"]
    assert api.ingest(wallet["id"], event_body(provider="paystack")).json()["provider"] == "paystack"


def test_bad_event_idempotency_key_header_is_400(api):
    wallet = api.wallet()
    response = api.ingest(wallet["id"], event_body(), headers={"Idempotency-Key": "é" * 3})
    assert "Idempotency-Key" in error_of(response, 400, "validation_error")["fields"]


@pytest.mark.parametrize("dedup", ["event_id", "provider_event_id", "idempotency_key"])
def test_matching_event_same_content_is_200_replayed_different_content_is_409(api, dedup):
    wallet = api.wallet()
    body = event_body(provider_event_id=...)
    headers: dict[str, str] = {}
    if dedup == "event_id":
        body["event_id"] = str(uuid.uuid4())
    elif dedup == "provider_event_id":
        body["provider_event_id"] = f"evt_{uuid.uuid4().hex}"
    else:
        headers["Idempotency-Key"] = f"ingest-{uuid.uuid4()}"
    first = api.ingest(wallet["id"], body, headers=headers)
    assert first.status_code == 201, first.text

    # Same content (amount by numeric value, occurred_at by instant); metadata is not content.
    same = dict(body, amount="1500", occurred_at="2026-11-20T15:02:18+01:00", metadata={"note": "resent"})
    replay = api.ingest(wallet["id"], same, headers=headers)
    assert replay.status_code == 200, replay.text
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()

    conflict = api.ingest(wallet["id"], dict(body, amount="1500.01"), headers=headers)
    error = error_of(conflict, 409, "event_conflict")
    assert error["existing_event_id"] == first.json()["id"]


def test_racing_identical_ingests_leave_one_event(api, base_url, key):
    wallet = api.wallet()
    body = event_body()
    responses = race(12, lambda _: Api(base_url, key).ingest(wallet["id"], body, headers={"Connection": "close"}))
    assert sorted(r.status_code for r in responses) == [200] * 11 + [201], [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert len(api.get(f"wallets/{wallet['id']}/events").json()["results"]) == 1
    assert api.get(f"wallets/{wallet['id']}/balance").json()["balances"][0]["event_count"] == 1


def test_same_event_id_with_another_provider_event_id_is_409(api):
    wallet = api.wallet()
    body = event_body(event_id=str(uuid.uuid4()))
    first = api.ingest(wallet["id"], body).json()
    error = error_of(api.ingest(wallet["id"], dict(body, provider_event_id="other")), 409, "event_conflict")
    assert error["existing_event_id"] == first["id"]


def test_provider_event_id_matches_across_wallets_of_the_provider(api):
    """The match is provider + provider_event_id: another wallet is different content."""
    first_wallet, second_wallet = api.wallet(), api.wallet()
    body = event_body()
    created = api.ingest(first_wallet["id"], body).json()
    error = error_of(api.ingest(second_wallet["id"], body), 409, "event_conflict")
    assert error["existing_event_id"] == created["id"]


def test_event_listing_order_filters_and_pages(api):
    wallet = api.wallet()
    times = ["2026-11-20T10:00:00Z", "2026-11-20T11:00:00Z", "2026-11-20T11:00:00Z", "2026-11-20T12:00:00Z"]
    types = ["deposit", "fee", "deposit", "withdrawal"]
    ids = [
        api.ingest(wallet["id"], event_body(occurred_at=t, event_type=k, amount="1.00")).json()["id"]
        for t, k in zip(times, types, strict=True)
    ]
    listed = api.get(f"wallets/{wallet['id']}/events").json()
    assert set(listed) == {"results", "next_cursor"} and listed["next_cursor"] is None
    # occurred_at descending, ties newest-recorded first.
    assert [e["id"] for e in listed["results"]] == [ids[3], ids[2], ids[1], ids[0]]
    assert all(set(e) == EVENT_FIELDS for e in listed["results"])

    deposits = api.get(f"wallets/{wallet['id']}/events?event_type=deposit").json()["results"]
    assert [e["id"] for e in deposits] == [ids[2], ids[0]]
    window = api.get(
        f"wallets/{wallet['id']}/events",
        params={"occurred_after": "2026-11-20T11:00:00Z", "occurred_before": "2026-11-20T12:00:00+00:00"},
    ).json()["results"]
    assert [e["id"] for e in window] == [ids[3], ids[2], ids[1]]  # inclusive at both ends

    page1 = api.get(f"wallets/{wallet['id']}/events?limit=3").json()
    page2 = api.get(f"wallets/{wallet['id']}/events", params={"limit": 3, "cursor": page1["next_cursor"]}).json()
    assert [e["id"] for e in page1["results"] + page2["results"]] == [ids[3], ids[2], ids[1], ids[0]]
    assert page2["next_cursor"] is None


@pytest.mark.parametrize(
    "query",
    [
        "event_type=gift",
        "occurred_after=2026-11-20T10:00:00",
        "occurred_before=tomorrow",
        "limit=0",
        "limit=1001",
        "cursor=abc",
    ],
)
def test_bad_event_listing_parameter_is_400_naming_it(api, query):
    wallet = api.wallet()
    error = error_of(api.get(f"wallets/{wallet['id']}/events?{query}"), 400, "validation_error")
    assert query.split("=")[0] in error["fields"]


# Batch


def test_batch_decides_each_item_in_order(api):
    wallet = api.wallet()
    stored = api.ingest(wallet["id"], event_body(provider_event_id="pre_" + uuid.uuid4().hex)).json()
    fresh = event_body(wallet_id=wallet["id"])
    events = [
        fresh,  # 0 created
        dict(fresh),  # 1 duplicate inside the batch
        dict(fresh, amount="2.00"),  # 2 conflict inside the batch
        event_body(wallet_id=wallet["id"], provider_event_id=stored["provider_event_id"]),  # 3 duplicate of stored
        event_body(wallet_id=str(uuid.uuid4())),  # 4 unknown wallet
        event_body(wallet_id=wallet["id"], amount="1e3"),  # 5 bad field
        event_body(wallet_id=wallet["id"], provider_event_id=..., idempotency_key=f"b-{uuid.uuid4()}"),  # 6 created
        event_body(wallet_id=wallet["id"], provider_event_id=...),  # 7 no dedup key
        "not an object",  # 8
    ]
    response = api.post("events/batch", {"events": events})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"results", "summary"}
    results = body["results"]
    assert [r["index"] for r in results] == list(range(len(events)))
    assert all(set(r) == {"index", "status", "event", "error"} for r in results)
    statuses = [r["status"] for r in results]
    assert statuses == [
        "created", "duplicate", "conflict", "duplicate", "invalid", "invalid", "created", "invalid", "invalid"
    ]  # fmt: skip
    assert body["summary"] == {"created": 2, "duplicate": 2, "conflict": 1, "invalid": 4}

    assert set(results[0]["event"]) == EVENT_FIELDS and results[0]["error"] is None
    assert results[1]["event"]["id"] == results[0]["event"]["id"]
    assert results[3]["event"]["id"] == stored["id"]
    assert results[2]["error"]["code"] == "event_conflict" and results[2]["event"] is None
    assert results[4]["error"]["code"] == "not_found"
    assert results[5]["error"]["code"] == "validation_error"
    assert results[7]["error"]["code"] == "dedup_key_required"
    for result in results[4:6] + results[7:]:
        assert result["event"] is None and result["error"]["message"]
    assert len(api.get(f"wallets/{wallet['id']}/events").json()["results"]) == 3


@pytest.mark.parametrize("events", [[], "x", None], ids=["empty", "string", "null"])
def test_batch_empty_or_not_a_list_is_400(api, events):
    error = error_of(api.post("events/batch", {"events": events}), 400, "validation_error")
    assert "events" in error["fields"]


def test_batch_without_events_is_400_and_an_item_without_wallet_id_is_invalid(api):
    error_of(api.post("events/batch", {}), 400, "validation_error")
    response = api.post("events/batch", {"events": [event_body()]})
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    assert (result["status"], result["error"]["code"], result["event"]) == ("invalid", "validation_error", None)


def test_batch_over_1000_items_is_400_and_1000_is_fine(api):
    wallet = api.wallet()
    items = [event_body(wallet_id=wallet["id"], provider_event_id=f"k{n}_{uuid.uuid4().hex}") for n in range(1001)]
    error = error_of(api.post("events/batch", {"events": items}), 400, "validation_error")
    assert "events" in error["fields"]
    response = api.post("events/batch", {"events": items[:1000]})
    assert response.status_code == 200
    assert response.json()["summary"]["created"] == 1000


# backfill_wallet_events, run as a process


def test_backfill_csv_from_stdin_exit_status_line_numbers_and_summary(api):
    wallet = api.wallet()
    header = "wallet_id,event_type,amount,currency,provider_event_id,occurred_at,metadata,idempotency_key\n"
    evt = f"bf_{uuid.uuid4().hex}"
    rows = [
        f'{wallet["id"]},deposit,10.00,NGN,{evt},2026-11-20T10:00:00Z,"{{""a"": 1}}",\n',  # line 2 created
        f"{wallet['id']},deposit,1e3,NGN,{evt}_x,2026-11-20T10:00:00Z,,\n",  # line 3 invalid
        f"{wallet['id']},deposit,10.00,NGN,{evt},2026-11-20T10:00:00Z,,\n",  # line 4 duplicate
        f"{wallet['id']},deposit,11.00,NGN,{evt},2026-11-20T10:00:00Z,,\n",  # line 5 conflict
    ]
    data = (header + "".join(rows)).encode()
    run = manage(["backfill_wallet_events", "-", "--format", "csv"], data)
    assert run.returncode == 1, run.stderr.decode()
    assert run.stdout.decode().strip().splitlines()[-1] == "read=4 created=1 duplicate=1 conflict=1 invalid=1"
    err = run.stderr.decode()
    assert "line 3:" in err and "line 5:" in err
    assert "line 2:" not in err and "line 4:" not in err

    again = manage(["backfill_wallet_events", "-", "--format", "csv"], data)
    assert again.stdout.decode().strip().splitlines()[-1] == "read=4 created=0 duplicate=2 conflict=1 invalid=1"
    events = api.get(f"wallets/{wallet['id']}/events").json()["results"]
    assert [(e["amount"], e["metadata"]) for e in events] == [("10.00", {"a": 1})]


def test_backfill_jsonl_file_clean_run_exits_0_and_unusable_input_exits_2(api, tmp_path):
    wallet = api.wallet()
    path = tmp_path / "export.jsonl"
    path.write_text(json.dumps(event_body(wallet_id=wallet["id"])) + "\n")
    # `-` without --format: standard input, JSONL (the option is optional in API.md).
    run = manage(["backfill_wallet_events", "-"], path.read_bytes())
    assert run.returncode == 0, run.stderr.decode()
    assert run.stdout.decode().strip().splitlines()[-1] == "read=1 created=1 duplicate=0 conflict=0 invalid=0"

    missing = manage(["backfill_wallet_events", str(tmp_path / "missing.jsonl")])
    assert missing.returncode == 2
    assert missing.stderr.strip()
    bad_format = manage(["backfill_wallet_events", str(path), "--format", "xml"])
    assert bad_format.returncode == 2
