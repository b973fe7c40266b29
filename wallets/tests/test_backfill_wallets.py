"""manage.py backfill_wallets: the registry's rules, resumable, every rejected row reported."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from audit.models import AuditRecord
from wallets.models import Wallet

USER_A = "7d0e3b8a-3a51-4c2e-9d3e-0a8f6b1c2d3e"
USER_B = "1f2e3d4c-5b6a-4798-8a7b-6c5d4e3f2a1b"


def run(path: str | Path, *args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("backfill_wallets", str(path), *args, stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def jsonl(tmp_path: Path, lines: list[object], name: str = "wallets.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


def row(account: str, user: str = USER_A, **extra: object) -> dict[str, object]:
    return {"user_id": user, "provider": "fincra", "provider_account_id": account, **extra}


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    return jsonl(
        tmp_path,
        [
            row("acct_1", provider_customer_id="cus_1", metadata={"kyc_verified": True}, idempotency_key="k-1"),  # 1
            row("acct_2"),  # 2 created
            "",  # 3 blank: not a record
            row("acct_1"),  # 4 duplicate of line 1 (same user and account)
            row("acct_2", user=USER_B),  # 5 wallet_claimed
            row("acct_3", idempotency_key="k-1"),  # 6 idempotency_key_reused
            {"user_id": 42, "provider": "fincra", "provider_account_id": "acct_4"},  # 7 invalid user_id
            row("acct_5", provider="nope"),  # 8 invalid provider
            "{not json",  # 9
            "[1, 2]",  # 10
            row("acct_6", metadata=[1]),  # 11 metadata not an object
            row("acct_7", idempotency_key="ключ"),  # 12 key not printable ASCII
            row("acct_8", provider="paystack", idempotency_key="k-8"),  # 13 created
        ],
    )


def test_mixed_file_is_decided_row_by_row(db, mixed):
    code, out, err = run(mixed)
    assert code == 1
    assert out == "read=12 created=3 duplicate=1 conflict=2 invalid=6\n"
    lines = err.splitlines()
    assert [line.split(":")[0] for line in lines] == [f"line {n}" for n in (5, 6, 7, 8, 9, 10, 11, 12)]
    assert lines[0].startswith("line 5: conflict wallet_claimed: ")
    assert lines[1].startswith("line 6: conflict idempotency_key_reused: ")
    assert lines[2].startswith("line 7: invalid validation_error: user_id: ")
    assert lines[3].startswith("line 8: invalid validation_error: provider: ")
    assert lines[4] == "line 9: invalid invalid_json: the line is not valid UTF-8 JSON."
    assert lines[5] == "line 10: invalid invalid_json: the line is not a JSON object."
    assert lines[6] == "line 11: invalid validation_error: metadata: Must be a JSON object."
    assert lines[7].startswith("line 12: invalid validation_error: idempotency_key: ")

    first = Wallet.objects.get(provider_account_id="acct_1")
    assert (first.user_id, first.provider_customer_id, first.metadata, first.idempotency_key) == (
        uuid.UUID(USER_A),
        "cus_1",
        {"kyc_verified": True},
        "k-1",
    )
    assert Wallet.objects.get(provider_account_id="acct_2").user_id == uuid.UUID(USER_A)
    assert set(Wallet.objects.values_list("provider_account_id", flat=True)) == {"acct_1", "acct_2", "acct_8"}
    assert AuditRecord.objects.filter(action="register_wallet", actor_id="backfill_wallets").count() == 3


def test_rerun_creates_nothing_and_reports_the_same_rejects(db, mixed):
    _, _, first_err = run(mixed)
    code, out, err = run(mixed)
    assert code == 1
    assert out == "read=12 created=0 duplicate=4 conflict=2 invalid=6\n"
    assert err == first_err
    assert Wallet.objects.count() == 3


def test_clean_file_exits_0_and_its_rerun_too(db, tmp_path):
    path = jsonl(tmp_path, [row(f"acct_{n}") for n in range(5)])
    assert run(path, "--batch-size", "2")[:2] == (0, "read=5 created=5 duplicate=0 conflict=0 invalid=0\n")
    assert run(path)[:2] == (0, "read=5 created=0 duplicate=5 conflict=0 invalid=0\n")


def test_each_batch_has_one_audit_record_with_file_and_line_range(db, tmp_path):
    path = jsonl(tmp_path, [row(f"acct_{n}") for n in range(5)])
    run(path, "--batch-size", "2")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    batches = AuditRecord.objects.filter(action="backfill_wallets_batch").order_by("id")
    assert [
        (b.resource_id, b.details["first_line"], b.details["last_line"], b.details["created"]) for b in batches
    ] == [
        (digest, 1, 2, 2),
        (digest, 3, 4, 2),
        (digest, 5, 5, 1),
    ]
    assert batches[0].details["file"] == "wallets.jsonl"
    assert batches[0].actor_type == "command"


def test_dry_run_writes_nothing(db, mixed):
    code, out, _ = run(mixed, "--dry-run")
    assert (code, out) == (1, "read=12 created=3 duplicate=1 conflict=2 invalid=6\n")
    assert Wallet.objects.count() == 0
    assert AuditRecord.objects.count() == 0


def test_csv_with_header_json_metadata_and_empty_cells(db, tmp_path):
    path = tmp_path / "wallets.csv"
    path.write_text(
        "user_id,provider,provider_account_id,provider_customer_id,metadata,idempotency_key\n"
        f'{USER_A},fincra,acct_1,,"{{""tier"": 2}}",\n'
        f"{USER_A},flutterwave,acct_2,cus_2,,key-2\n"
        f"{USER_A},fincra,acct_3,,{{oops,\n"
        f"{USER_A},fincra\n"
        f'{USER_B},fincra,"acct_1",,,\n'
    )
    code, out, err = run(path)
    assert (code, out) == (1, "read=5 created=2 duplicate=0 conflict=1 invalid=2\n")
    assert err.splitlines() == [
        "line 4: invalid validation_error: metadata: Must be a JSON object.",
        "line 5: invalid validation_error: expected 6 columns, found 2.",
        err.splitlines()[2],
    ]
    assert err.splitlines()[2].startswith("line 6: conflict wallet_claimed: ")
    first = Wallet.objects.get(provider_account_id="acct_1")
    assert (first.provider_customer_id, first.metadata, first.idempotency_key) == (None, {"tier": 2}, None)
    assert Wallet.objects.get(provider_account_id="acct_2").idempotency_key == "key-2"


def test_standard_input_needs_a_format(db, tmp_path, monkeypatch):
    assert run("-")[0] == 2
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(row("acct_1")) + "\n")
    with source.open("rb") as stdin:
        monkeypatch.setattr(sys, "stdin", type("Stdin", (), {"buffer": stdin})())
        assert run("-", "--format", "jsonl")[:2] == (0, "read=1 created=1 duplicate=0 conflict=0 invalid=0\n")


@pytest.mark.parametrize(
    ("name", "content", "args"),
    [
        ("missing.jsonl", None, ()),
        ("wallets.txt", "{}\n", ()),
        ("wallets.csv", "user_id,provider\n", ()),
        ("wallets.csv", "user_id,provider,provider_account_id,colour\n", ()),
        ("wallets.jsonl", "{}\n", ("--batch-size", "0")),
    ],
)
def test_unusable_input_is_exit_2(db, tmp_path, name, content, args):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    code, out, _ = run(path, *args)
    assert (code, out) == (2, "")
    assert Wallet.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_killed_mid_run_then_rerun_ends_exact(tmp_path):
    total = 1000
    path = jsonl(tmp_path, [row(f"acct_{n}", user=str(uuid.uuid4()), idempotency_key=f"k{n}") for n in range(total)])
    database = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "amani.settings.test",
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
    }
    command = [sys.executable, "manage.py", "backfill_wallets", str(path), "--batch-size", "20"]
    process = subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while Wallet.objects.count() < 100 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    stored = Wallet.objects.count()
    assert 0 < stored < total, "the kill must land mid-run"
    assert stored % 20 == 0, "only whole batches commit"

    rerun = subprocess.run(command, cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, check=False)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout == f"read={total} created={total - stored} duplicate={stored} conflict=0 invalid=0\n"
    assert Wallet.objects.count() == total
    assert Wallet.objects.values("idempotency_key").distinct().count() == total
