"""manage.py backfill_wallet_events (API.md, Operations contract)."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditRecord
from events.models import BalanceBucket, WalletEvent
from events.tests.factories import WalletEventFactory
from wallets.tests.factories import WalletFactory

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("backfill_wallet_events", *args, stdout=out, stderr=err)
        code = 0
    except CommandError as exc:
        code = exc.returncode
        err.write(str(exc))
    return code, out.getvalue(), err.getvalue()


def record(wallet, provider_event_id: str, **overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "wallet_id": str(wallet.public_id),
        "event_type": "deposit",
        "amount": "10.00",
        "currency": "NGN",
        "provider_event_id": provider_event_id,
        "occurred_at": "2026-11-20T10:00:00Z",
        "metadata": {"source": "export"},
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


@pytest.fixture
def mixed(tmp_path):
    """A file with good, bad, duplicate and conflicting records; returns (records, wallet, earlier event)."""
    wallet = WalletFactory()
    earlier = WalletEventFactory(
        wallet=wallet,
        provider_event_id="pre_1",
        amount=Decimal("5.00"),
        occurred_at=dt.datetime(2026, 11, 20, 10, tzinfo=dt.UTC),
    )
    records: list[object] = [
        record(wallet, "a1"),  # line 1: created
        record(wallet, "a2", event_type="withdrawal", amount="3.50"),  # 2: created
        "{not json",  # 3: invalid
        record(wallet, "a3", amount="1e3"),  # 4: invalid amount
        record(wallet, "a1"),  # 5: duplicate of line 1 (same file)
        record(wallet, "a2", amount="9.99", event_type="withdrawal"),  # 6: conflict with line 2
        record(wallet, "pre_1", amount="5.00"),  # 7: duplicate of a stored event
        record(wallet, "pre_1", amount="6.00"),  # 8: conflict with a stored event
        record(WalletFactory.build(), "a4"),  # 9: unknown wallet
        record(wallet, None, idempotency_key="key-1", event_type="fee", amount="0.50"),  # 10: created
        record(wallet, None),  # 11: no dedup key
        record(wallet, "a5", currency="ngn"),  # 12: invalid currency
    ]
    return records, wallet, earlier


def write_jsonl(path: Path, records: list[object]) -> Path:
    lines = [item if isinstance(item, str) else json.dumps(item) for item in records]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_csv(path: Path, records: list[object]) -> Path:
    columns = ["wallet_id", "event_type", "amount", "currency", "provider_event_id", "occurred_at", "metadata"]
    columns.append("idempotency_key")
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for item in records:
            if isinstance(item, str):
                writer.writerow(["not-a-uuid", "deposit", "x", "NGN", "", "", "", ""])
                continue
            row = dict(item)
            if "metadata" in row:
                row["metadata"] = json.dumps(row["metadata"])
            writer.writerow([row.get(column, "") for column in columns])
    return path


EXPECTED_REJECTS = {3, 4, 6, 8, 9, 11, 12}


def rejected_lines(err: str) -> set[int]:
    return {int(line.split(":")[0].removeprefix("line ")) for line in err.splitlines() if line.startswith("line ")}


def test_jsonl_good_bad_duplicate_and_conflicting_lines(tmp_path, mixed):
    records, wallet, earlier = mixed
    path = write_jsonl(tmp_path / "export.jsonl", records)
    code, out, err = run(str(path), "--batch-size", "4")

    assert code == 1
    assert out.strip().splitlines()[-1] == "read=12 created=3 duplicate=2 conflict=2 invalid=5"
    assert rejected_lines(err) == EXPECTED_REJECTS
    assert "line 4: invalid validation_error" in err and "amount" in err.split("line 4:")[1].splitlines()[0]
    assert f"existing_event_id={earlier.public_id}" in err.split("line 8:")[1].splitlines()[0]
    assert "line 9: invalid not_found" in err
    assert "line 11: invalid dedup_key_required" in err
    stored = WalletEvent.objects.filter(wallet=wallet)
    assert set(stored.values_list("provider_event_id", flat=True)) == {"a1", "a2", "pre_1", None}
    assert stored.get(idempotency_key="key-1").event_type == "fee"
    # New events went into the balance buckets in the same transactions.
    bucket = BalanceBucket.objects.get(wallet=wallet, currency="NGN")
    assert (bucket.event_count, bucket.ledger) == (3, Decimal("6.00"))

    audits = list(AuditRecord.objects.filter(action="backfill_events_batch").order_by("id"))
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert [(a.details["first_line"], a.details["last_line"]) for a in audits] == [(1, 4), (5, 8), (9, 12)]
    assert all(a.details["file"] == "export.jsonl" and a.details["sha256"] == sha for a in audits)
    assert [a.details["read"] for a in audits] == [4, 4, 4]
    assert sum(a.details["created"] for a in audits) == 3
    assert not AuditRecord.objects.filter(action="ingest_event").exists()


def test_rerun_stores_nothing_new(tmp_path, mixed):
    records, wallet, _ = mixed
    path = write_jsonl(tmp_path / "export.jsonl", records)
    run(str(path))
    count = WalletEvent.objects.count()
    code, out, _ = run(str(path), "--batch-size", "5")
    assert code == 1
    assert out.strip() == "read=12 created=0 duplicate=5 conflict=2 invalid=5"
    assert WalletEvent.objects.count() == count
    assert BalanceBucket.objects.get(wallet=wallet).event_count == 3


def test_csv_file_decides_as_jsonl(tmp_path, mixed):
    records, wallet, _ = mixed
    path = write_csv(tmp_path / "export.csv", records)
    code, out, err = run(str(path), "--batch-size", "3")
    assert code == 1
    assert out.strip() == "read=12 created=3 duplicate=2 conflict=2 invalid=5"
    # The header is line 1: record n is on line n + 1.
    assert rejected_lines(err) == {n + 1 for n in EXPECTED_REJECTS}
    event = WalletEvent.objects.get(wallet=wallet, provider_event_id="a1")
    assert event.metadata == {"source": "export"}
    assert WalletEvent.objects.get(idempotency_key="key-1").provider_event_id is None  # empty cell = absent


def test_csv_bad_metadata_and_short_rows_are_reported(tmp_path):
    wallet = WalletFactory()
    path = tmp_path / "bad.csv"
    path.write_text(
        "wallet_id,event_type,amount,currency,provider_event_id,occurred_at,metadata\n"
        f'{wallet.public_id},deposit,1.00,NGN,m1,2026-11-20T10:00:00Z,"{{oops"\n'
        f"{wallet.public_id},deposit,1.00\n"
        f'{wallet.public_id},deposit,1.00,NGN,m2,2026-11-20T10:00:00Z,"{{""a"": 1}}"\n'
    )
    code, out, err = run(str(path))
    assert code == 1
    assert out.strip() == "read=3 created=1 duplicate=0 conflict=0 invalid=2"
    assert "line 2: invalid validation_error" in err and "metadata" in err
    assert "line 3: invalid validation_error: expected 7 columns, found 3." in err
    assert WalletEvent.objects.get(provider_event_id="m2").metadata == {"a": 1}


def test_all_good_file_exits_zero(tmp_path):
    wallet = WalletFactory()
    path = write_jsonl(tmp_path / "good.ndjson", [record(wallet, f"g{n}") for n in range(7)])
    assert run(str(path), "--batch-size", "2")[:2] == (0, "read=7 created=7 duplicate=0 conflict=0 invalid=0\n")
    assert AuditRecord.objects.filter(action="backfill_events_batch").count() == 4


def test_dry_run_writes_nothing_but_counts(tmp_path, mixed):
    records, _, _ = mixed
    path = write_jsonl(tmp_path / "export.jsonl", records)
    events, audits, buckets = WalletEvent.objects.count(), AuditRecord.objects.count(), BalanceBucket.objects.count()
    code, out, _ = run(str(path), "--dry-run", "--batch-size", "2")
    # Decided exactly as a real run, across batches too (line 5 duplicates line 1 of another batch).
    assert (code, out.strip()) == (1, "read=12 created=3 duplicate=2 conflict=2 invalid=5")
    assert WalletEvent.objects.count() == events
    assert AuditRecord.objects.count() == audits
    assert BalanceBucket.objects.count() == buckets


def test_stdin_is_jsonl_by_default_and_has_no_checksum(tmp_path, monkeypatch):
    wallet = WalletFactory()
    data = (json.dumps(record(wallet, "s1")) + "\n").encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, out, _ = run("-")
    assert (code, out.strip()) == (0, "read=1 created=1 duplicate=0 conflict=0 invalid=0")
    audit = AuditRecord.objects.get(action="backfill_events_batch")
    assert audit.details["sha256"] is None and audit.details["file"] == "-"


@pytest.mark.parametrize(
    ("name", "content", "args"),
    [
        ("missing.jsonl", None, []),
        ("export.jsonl", "{}\n", ["--batch-size", "0"]),
        ("bad_header.csv", "wallet,amount\n", []),
        ("no_wallet.csv", "event_type,amount,currency,occurred_at\n", []),
    ],
)
def test_unusable_arguments_or_input_exit_2(tmp_path, name, content, args):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    code, out, err = run(str(path), *args)
    assert code == 2
    assert out == ""
    assert err.strip()
    assert WalletEvent.objects.count() == 0


def test_blank_lines_are_not_records(tmp_path):
    wallet = WalletFactory()
    path = tmp_path / "blank.jsonl"
    path.write_text("\n" + json.dumps(record(wallet, "b1")) + "\n\n   \n" + json.dumps(record(wallet, "bad", amount=5)))
    code, out, err = run(str(path))
    assert (code, out.strip()) == (1, "read=2 created=1 duplicate=0 conflict=0 invalid=1")
    assert rejected_lines(err) == {5}


def test_unknown_extension_is_read_as_jsonl(tmp_path):
    wallet = WalletFactory()
    path = write_jsonl(tmp_path / "export.txt", [record(wallet, "t1")])
    assert run(str(path))[:2] == (0, "read=1 created=1 duplicate=0 conflict=0 invalid=0\n")


def test_event_id_in_file_becomes_the_id(tmp_path):
    wallet = WalletFactory()
    event_id = uuid.uuid4()
    path = write_jsonl(tmp_path / "ids.jsonl", [record(wallet, None, event_id=str(event_id))])
    assert run(str(path))[0] == 0
    assert WalletEvent.objects.get().public_id == event_id


def test_byte_order_mark_is_not_part_of_the_first_record(tmp_path):
    wallet = WalletFactory()
    for name, content in (
        ("bom.jsonl", json.dumps(record(wallet, "bom_j")) + "\n"),
        (
            "bom.csv",
            f"wallet_id,event_type,amount,currency,occurred_at,provider_event_id\n"
            f"{wallet.public_id},deposit,1.00,NGN,2026-11-20T10:00:00Z,bom_c\n",
        ),
    ):
        path = tmp_path / name
        path.write_bytes(b"\xef\xbb\xbf" + content.encode())
        assert run(str(path))[:2] == (0, "read=1 created=1 duplicate=0 conflict=0 invalid=0\n")


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_null_and_oversized_metadata_are_rejected_as_by_the_batch(tmp_path, settings, fmt):
    settings.API_MAX_BODY_BYTES = 1024
    wallet = WalletFactory()
    records: list[object] = [
        record(wallet, "ok"),
        {**record(wallet, "null_meta"), "metadata": None},
        record(wallet, "big_meta", metadata={"blob": "x" * 2000}),
        record(wallet, "no_meta", metadata=None),
    ]
    path = (write_jsonl if fmt == "jsonl" else write_csv)(tmp_path / f"meta.{fmt}", records)
    code, out, err = run(str(path))
    assert code == 1
    assert out.strip() == "read=4 created=2 duplicate=0 conflict=0 invalid=2"
    first = 2 if fmt == "csv" else 1  # the CSV header is line 1
    assert rejected_lines(err) == {first + 1, first + 2}
    reasons = [line for line in err.splitlines() if line.startswith("line ")]
    assert all("invalid validation_error" in line and "metadata" in line for line in reasons), reasons
    assert set(WalletEvent.objects.values_list("provider_event_id", flat=True)) == {"ok", "no_meta"}
    assert WalletEvent.objects.get(provider_event_id="no_meta").metadata == {}


def test_text_with_copy_delimiters_and_escapes_is_stored_as_sent(tmp_path):
    # The reader formats COPY's text format itself: tab, newline, carriage return and
    # backslash must come through unchanged, as must non-ASCII and quotes.
    wallet = WalletFactory()
    provider_event_id = 'tab\there\nnew\rline \\N back\\slash "q" ñ €'
    metadata = {"note": "a\tb\nc\\d\\N", "nested": {"k\t": ["\\", "é", 1.5, None, True]}}
    path = write_jsonl(
        tmp_path / "escapes.jsonl",
        [record(wallet, provider_event_id, metadata=metadata, idempotency_key="key\\with.back_slash")],
    )
    assert run(str(path))[:2] == (0, "read=1 created=1 duplicate=0 conflict=0 invalid=0\n")
    event = WalletEvent.objects.get()
    assert (event.provider_event_id, event.metadata) == (provider_event_id, metadata)
    assert event.idempotency_key == "key\\with.back_slash"
    assert run(str(path))[:2] == (0, "read=1 created=0 duplicate=1 conflict=0 invalid=0\n")


def test_buckets_match_the_events_after_a_mixed_backfill(tmp_path, mixed):
    records, wallet, _ = mixed
    records = [*records, record(wallet, "h1", event_type="hold", amount="2.25", occurred_at="2026-11-21T00:00:00Z")]
    run(str(write_jsonl(tmp_path / "mixed.jsonl", records)))
    buckets = {
        (b.currency, b.day): (b.ledger, b.held, b.event_count) for b in BalanceBucket.objects.filter(wallet=wallet)
    }
    # The earlier event (5.00) came with no bucket from the factory; the file added a1 (10.00),
    # a2 (withdrawal 3.50) and key-1 (fee 0.50) on the 20th, and the hold on the 21st.
    assert buckets[("NGN", dt.date(2026, 11, 20))] == (Decimal("6.00"), Decimal("0"), 3)
    assert buckets[("NGN", dt.date(2026, 11, 21))] == (Decimal("0"), Decimal("2.25"), 1)
