"""Backfill throughput: `manage.py backfill_wallet_events` against raw psycopg COPY, same file, same table.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/amani_bench .venv/bin/python bench/bench_backfill.py

1. Creates the database if it is missing and migrates it; creates the wallets.
2. Writes a JSONL export of N events (default 1,000,000) spread over the wallets.
3. (a) raw: psycopg reads the file, json-decodes each line, COPYs the rows into a
   temporary staging table and moves each batch with INSERT … SELECT … ON CONFLICT
   DO NOTHING into the events table (emptied first), one transaction per batch;
   no validation, no decisions, no balance buckets, no audit.
   (b) the command on the same file into the emptied table, as a subprocess; its
   peak RSS comes from wait4().
4. Prints events/s for both, the ratio (target >= 60 %) and the peak RSS (target < 300 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/amani_bench"
EVENT_TYPES = ["deposit", "deposit", "deposit", "withdrawal", "transfer_in", "transfer_out", "fee", "refund"]
TARGET_RATIO = 0.60
TARGET_RSS_MB = 300


def log(message: str) -> None:
    print(f"[bench_backfill {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def django_env(url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="amani.settings.base",
        DEBUG="false",  # DEBUG keeps every query in memory: never for a million records
        SECRET_KEY=env.get("SECRET_KEY", "bench-only-secret-key-" + "x" * 40),
        LOG_LEVEL="WARNING",
    )
    return env


def database_prepare(url: str, wallets: int) -> list[str]:
    """Create and migrate the database; return the public ids of `wallets` wallets."""
    parts = psycopg.conninfo.conninfo_to_dict(url)
    name = parts.pop("dbname")
    with psycopg.connect(psycopg.conninfo.make_conninfo(**parts, dbname="postgres"), autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    env = django_env(url)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    script = (
        "import django, json, sys, uuid; django.setup()\n"
        "from wallets.models import Wallet\n"
        f"made = Wallet.objects.bulk_create(Wallet(user_id=uuid.uuid4(), provider='fincra', "
        f"provider_account_id='bench_backfill_' + uuid.uuid4().hex) for _ in range({wallets}))\n"
        "print(json.dumps([str(w.public_id) for w in made]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True, capture_output=True)
    return json.loads(done.stdout)


def export_write(path: Path, records: int, wallet_ids: list[str]) -> None:
    rng = random.Random(42)
    run = uuid.uuid4().hex[:8]
    with path.open("w") as handle:
        for i in range(records):
            # Exports are chronological: October, one day after another, wallets interleaved.
            day = 1 + i * 28 // records
            record = {
                "wallet_id": wallet_ids[i % len(wallet_ids)],
                "event_type": EVENT_TYPES[rng.randrange(len(EVENT_TYPES))],
                "amount": f"{rng.randrange(1, 10_000_000) / 100:.2f}",
                "currency": "NGN",
                "provider_event_id": f"bf_{run}_{i}",
                "occurred_at": f"2026-10-{day:02d}T{i % 24:02d}:{i % 60:02d}:{(i // 60) % 60:02d}Z",
                "metadata": {"batch": i // 1000, "channel": "bank_transfer"},
            }
            handle.write(json.dumps(record) + "\n")


def tables_empty(conn: psycopg.Connection) -> None:
    conn.execute("TRUNCATE events_walletevent, events_balancebucket")
    conn.commit()
    conn.execute("CHECKPOINT")
    conn.commit()


def raw_load(conn: psycopg.Connection, path: Path, batch_size: int) -> int:
    """COPY + INSERT … SELECT … ON CONFLICT DO NOTHING, one transaction per batch."""
    conn.execute(
        "CREATE TEMPORARY TABLE raw_staging (ord integer, wallet_public_id uuid, event_type text, amount numeric, "
        "currency text, provider_event_id text, occurred_at timestamptz, metadata jsonb) ON COMMIT DELETE ROWS"
    )
    conn.commit()
    move = (
        "INSERT INTO events_walletevent (public_id, wallet_id, provider, event_type, amount, currency, "
        "provider_event_id, idempotency_key, metadata, occurred_at, created_at) "
        "SELECT gen_random_uuid(), w.id, w.provider, s.event_type, s.amount, s.currency, s.provider_event_id, "
        "NULL, s.metadata, s.occurred_at, now() FROM raw_staging s JOIN wallets_wallet w ON w.public_id = "
        "s.wallet_public_id ORDER BY s.ord ON CONFLICT DO NOTHING"
    )
    inserted = 0
    loads, dumps = json.loads, json.dumps

    def flush(rows: list[tuple]) -> int:
        with conn.cursor() as cursor:
            with cursor.copy(
                "COPY raw_staging (ord, wallet_public_id, event_type, amount, currency, provider_event_id, "
                "occurred_at, metadata) FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(move)
            count = cursor.rowcount
        conn.commit()
        return count

    rows: list[tuple] = []
    with path.open("rb") as handle:
        for i, line in enumerate(handle):
            d = loads(line)
            rows.append(
                (
                    i,
                    d["wallet_id"],
                    d["event_type"],
                    d["amount"],
                    d["currency"],
                    d["provider_event_id"],
                    d["occurred_at"],
                    dumps(d["metadata"]),
                )
            )
            if len(rows) >= batch_size:
                inserted += flush(rows)
                rows = []
    if rows:
        inserted += flush(rows)
    return inserted


def command_load(url: str, path: Path, batch_size: int) -> tuple[float, int, float, str]:
    """Run the command; (seconds, peak RSS in KiB, CPU seconds, stdout)."""
    env = django_env(url)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "manage.py", "backfill_wallet_events", str(path), "--batch-size", str(batch_size)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=err,
        )
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if process.returncode != 0:
        raise SystemExit(f"backfill_wallet_events exited {process.returncode}:\n{stderr[-2000:]}")
    return elapsed, usage.ru_maxrss, usage.ru_utime + usage.ru_stime, stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--wallets", type=int, default=1_000)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--file", type=Path, help="Reuse or keep the export at this path.")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)

    log(f"preparing {url.rsplit('/', 1)[-1]} with {args.wallets} wallets")
    wallet_ids = database_prepare(url, args.wallets)
    path = args.file or Path(tempfile.gettempdir()) / f"bench_backfill_{args.records}.jsonl"
    log(f"writing {args.records:,} records to {path}")
    export_write(path, args.records, wallet_ids)
    size_mb = path.stat().st_size / 2**20

    with psycopg.connect(url) as conn:
        tables_empty(conn)
        log("(a) raw psycopg COPY + INSERT … SELECT … ON CONFLICT DO NOTHING")
        started, cpu_started = time.perf_counter(), time.process_time()
        raw_rows = raw_load(conn, path, args.batch_size)
        raw_seconds, raw_cpu = time.perf_counter() - started, time.process_time() - cpu_started
        if raw_rows != args.records:
            raise SystemExit(f"raw load inserted {raw_rows} of {args.records}")
        tables_empty(conn)

    log("(b) manage.py backfill_wallet_events")
    seconds, rss_kib, cpu, summary = command_load(url, path, args.batch_size)
    expected = f"read={args.records} created={args.records} duplicate=0 conflict=0 invalid=0"
    if summary.splitlines()[-1] != expected:
        raise SystemExit(f"unexpected summary: {summary!r}")
    with psycopg.connect(url) as conn:
        stored = conn.execute("SELECT count(*) FROM events_walletevent").fetchone()[0]
    if stored != args.records:
        raise SystemExit(f"the command stored {stored} of {args.records}")

    raw_rate, command_rate = args.records / raw_seconds, args.records / seconds
    ratio = command_rate / raw_rate
    rss_mb = rss_kib / 1024
    print(f"file: {args.records:,} records, {size_mb:.0f} MB, batch size {args.batch_size}")
    print(f"raw COPY + INSERT…SELECT: {raw_seconds:8.1f} s  {raw_rate:10,.0f} events/s  client CPU {raw_cpu:6.1f} s")
    print(f"backfill_wallet_events:   {seconds:8.1f} s  {command_rate:10,.0f} events/s  client CPU {cpu:6.1f} s")
    print(f"load average at the end: {' '.join(f'{value:.1f}' for value in os.getloadavg())} ({os.cpu_count()} CPUs)")
    print(f"ratio: {ratio:.0%} (target >= {TARGET_RATIO:.0%}) {'PASS' if ratio >= TARGET_RATIO else 'FAIL'}")
    print(f"peak RSS: {rss_mb:.0f} MB (target < {TARGET_RSS_MB} MB) {'PASS' if rss_mb < TARGET_RSS_MB else 'FAIL'}")
    if args.file is None:
        path.unlink()
    if ratio < TARGET_RATIO or rss_mb >= TARGET_RSS_MB:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
