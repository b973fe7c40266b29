"""The tamper-evident history's figures: verification, sealing, and ingestion with a sealer running.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/amani_bench_history .venv/bin/python -m bench.bench_history

Also run by `make bench` (bench/run.py's extras) on the bench database, whose million-event
wallet is then part of the backlog it seals.

1. Loads records server-side (generate_series, one transaction per 50,000) until the
   database holds at least --records events and audit records (half each).
2. Seals the whole backlog with `manage.py seal_history`: records per second, peak RSS.
3. Verifies it with `manage.py verify_history` and scripts/verify_history.py: seconds each
   (target < 60 s for 1,000,000 records), and the two must print the same line.
4. Ingests through gunicorn (signed POST …/events/ingest, like make bench's phase 2) in
   alternating phases without and with `seal_history --every 1` running beside it: ingest
   events/s with the sealer / without (target >= 95 %), and sealing throughput against the
   ingest rate in records per second (each event writes an audit record too; target > 10x).

   One phase's rate moves by ±10 % here with nothing changed (a checkpoint's full-page
   writes, autovacuum, a worker's first requests), more than the effect measured. So:
   every phase starts alike (nothing unsealed, a CHECKPOINT just taken, no worker
   recycling: GUNICORN_MAX_REQUESTS=0), the phases alternate in ABBA order over --rounds
   pairs, and the figure is the pooled rate of each mode (all its events over all its
   seconds); each pair's ratio is printed beside it to show the spread.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit, urlunsplit

import psycopg

from bench import cpu, loadgen
from bench.run import HOST, free_port, ingest_builder, server_env, server_start, server_stop

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/amani_bench_history"
CHUNK = 50_000


MIN_BACKLOG = 100_000  # records: below this the backlog seal times the command's start, not sealing


def log(message: str) -> None:
    print(f"[bench_history {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def manage(env: dict[str, str], *args: str, check: bool = True) -> tuple[float, float, str]:
    """Run a management command; (seconds, peak RSS MiB, stdout)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "manage.py", *args], cwd=ROOT, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode().strip()
        if check and os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"manage.py {' '.join(args)} failed:\n{stdout}\n{err.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, stdout


def process_cpu(pid: int) -> float:
    """CPU seconds a process has used so far (user + system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def database_ensure(url: str) -> None:
    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    name = parts.path.lstrip("/")
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def records_load(url: str, wanted: int, wallet_pk: int) -> int:
    """Events and audit records (half each) until there are `wanted`; returns how many there are."""
    with psycopg.connect(url, autocommit=True) as conn:
        have = conn.execute(
            "SELECT (SELECT count(*) FROM events_walletevent) + (SELECT count(*) FROM audit_auditrecord)"
        ).fetchone()[0]
        run = os.urandom(4).hex()
        missing, done = max(0, wanted - have), 0
        log(f"{have:,} records present, loading {missing:,}")
        while done < missing:
            n = min(CHUNK, missing - done) // 2 or 1
            with conn.transaction():
                conn.execute(
                    "INSERT INTO events_walletevent (public_id, wallet_id, provider, event_type, amount, currency, "
                    "provider_event_id, metadata, occurred_at, created_at) "
                    "SELECT gen_random_uuid(), %s, 'fincra', 'deposit', (g %% 100000 + 1) / 100.0, 'NGN', "
                    "%s || g, jsonb_build_object('batch', g / 1000, 'channel', 'bank_transfer'), "
                    "now() - g * interval '1 second', now() FROM generate_series(1, %s) AS g",
                    [wallet_pk, f"bh-{run}-{done}-", n],
                )
                conn.execute(
                    "INSERT INTO audit_auditrecord (action, actor_type, actor_id, user_id, resource_type, resource_id, "
                    "details, request_id, created_at) SELECT 'ingest_event', 'command', 'bench_history', "
                    "gen_random_uuid(), 'wallet_event', gen_random_uuid()::text, "
                    "jsonb_build_object('amount', (g %% 100000 + 1) / 100.0, 'currency', 'NGN'), '', now() "
                    "FROM generate_series(1, %s) AS g",
                    [n],
                )
            done += 2 * n
        conn.execute("VACUUM ANALYZE events_walletevent")
        conn.execute("VACUUM ANALYZE audit_auditrecord")
        return have + done


def checkpoint(url: str) -> None:
    """CHECKPOINT, so that every phase starts with the same full-page writes ahead of it."""
    # Not a superuser (nor pg_checkpoint): the phases are noisier, the ABBA order still holds.
    with psycopg.connect(url, autocommit=True) as conn, contextlib.suppress(psycopg.errors.InsufficientPrivilege):
        conn.execute("CHECKPOINT")


def unsealed(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT (SELECT count(*) FROM events_walletevent WHERE xact_id >= x) "
            "+ (SELECT count(*) FROM audit_auditrecord WHERE xact_id >= x) "
            "FROM (SELECT coalesce(max(xact_to), 0) AS x FROM history_block) AS head"
        ).fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000, help="at least this many records to verify")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per ingest phase")
    parser.add_argument(
        "--rounds", type=int, default=8, help="pairs of ingest phases, without and with the sealer, order alternating"
    )
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL") or DEFAULT_URL
    env = server_env(url)
    env["LOG_LEVEL"] = "WARNING"
    env["GUNICORN_MAX_REQUESTS"] = "0"  # a worker restarting inside a phase costs it a Django start
    logdir = Path(tempfile.mkdtemp(prefix="amani-bench-history-"))
    log(f"database {url}; logs in {logdir}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")

    database_ensure(url)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    prepared = json.loads(
        subprocess.run(
            [sys.executable, "-m", "bench.prepare", str(args.clients), "1000"],
            cwd=ROOT, env=env, check=True, capture_output=True, text=True,
        ).stdout
    )  # fmt: skip
    total = records_load(url, args.records, prepared["deep_wallet"]["pk"])
    backlog = unsealed(url)

    log(f"sealing a backlog of {backlog:,} records")
    seal_seconds, seal_rss, seal_out = manage(env, "seal_history")
    seal_rate = backlog / seal_seconds
    log(f"sealed in {seal_seconds:.1f} s ({seal_rate:,.0f} records/s, peak RSS {seal_rss:.0f} MiB): {seal_out}")

    log("verifying: manage.py verify_history")
    verify_seconds, verify_rss, verify_out = manage(env, "verify_history")
    log("verifying: scripts/verify_history.py")
    started = time.perf_counter()
    script = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "verify_history.py"), url], capture_output=True, text=True, check=False
    )
    script_seconds = time.perf_counter() - started
    if script.stdout.strip() != verify_out:
        raise SystemExit(f"the verifiers disagree:\n{verify_out}\n{script.stdout}{script.stderr}")

    port = free_port()
    server = server_start(
        env, port, SimpleNamespace(profile=False, workers=None, threads=None, worker_class=None), logdir
    )
    log("warm-up: 5 s of ingest (workers start cold)")
    loadgen.http_phase(
        host=HOST, port=port, keys=prepared["keys"], count=10_000, duration=5,
        builders=[ingest_builder("hwarm", w, prepared["wallets"]) for w in range(args.clients)],
    )  # fmt: skip
    rates: dict[str, list[float]] = {"without": [], "with": []}
    totals: dict[str, list[float]] = {"without": [0, 0.0], "with": [0, 0.0]}  # events, seconds
    sealer_blocks = 0
    sealer_cpu: list[float] = []  # the sealer process's CPU per second of load (its start excluded)
    try:
        for round_ in range(args.rounds):
            # ABBA: the order flips every round, so that a drift over the run (the tables grow,
            # autovacuum comes and goes) weighs on both modes alike instead of on "with" alone.
            for mode in ("without", "with") if round_ % 2 == 0 else ("with", "without"):
                manage(env, "seal_history")  # every phase starts with nothing unsealed
                checkpoint(url)  # and with the same full-page writes ahead of it
                sealer = None
                if mode == "with":
                    sealer = subprocess.Popen(
                        [sys.executable, "manage.py", "seal_history", "--every", "1"],
                        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                    )  # fmt: skip
                    sealer.stderr.readline()  # "sealing every 1 s": it is up before the load starts
                    sealer_started = process_cpu(sealer.pid)
                tag = f"h{round_}{mode}"
                before = cpu.snapshot()
                builders = [ingest_builder(tag, w, prepared["wallets"]) for w in range(args.clients)]
                result = loadgen.http_phase(
                    host=HOST, port=port, keys=prepared["keys"], builders=builders,
                    count=int(args.duration * 2000), duration=args.duration,
                )  # fmt: skip
                use = cpu.usage(
                    before, cpu.snapshot(), server_pid=server.pid, elapsed=result.elapsed,
                    database=urlsplit(url).path.lstrip("/"), new_backends=True,
                )  # fmt: skip
                if sealer is not None:
                    sealer_cpu.append((process_cpu(sealer.pid) - sealer_started) / result.elapsed)
                    sealer.send_signal(signal.SIGTERM)
                    out, _ = sealer.communicate(timeout=60)
                    sealer_blocks += len(out.splitlines())
                statuses = dict(result.statuses)
                if set(statuses) != {201}:
                    raise SystemExit(f"unexpected statuses {statuses}: {result.errors[:3]}")
                rates[mode].append(result.rate)
                totals[mode][0] += result.count
                totals[mode][1] += result.elapsed
                per_event = {k: use[k] / result.rate * 1e3 for k in ("server", "postgres", "machine")}
                log(
                    f"ingest {mode} the sealer: {result.rate:,.0f} events/s, p99 {result.percentile(99) * 1e3:.0f} ms; "
                    f"CPU ms/event server {per_event['server']:.2f}, postgres {per_event['postgres']:.2f}, "
                    f"machine {per_event['machine']:.2f} ({use['machine']:.2f} of {use['cores']:.1f} cores busy)"
                )
    finally:
        server_stop(server)
    manage(env, "seal_history")
    final_seconds, _, final_out = manage(env, "verify_history")

    without, with_sealer = (totals[m][0] / totals[m][1] for m in ("without", "with"))
    pairs = [w / wo for w, wo in zip(rates["with"], rates["without"], strict=True)]
    ingest_records = 2 * max(without, with_sealer)  # each new event writes one audit record
    checks = [
        (f"verify_history, {total:,} records", f"{verify_seconds:.1f} s", "< 60 s", verify_seconds < 60),
        ("scripts/verify_history.py, same records", f"{script_seconds:.1f} s", "< 60 s", script_seconds < 60),
        ("ingest, records/s (events + audit)", f"{ingest_records:,.0f} rec/s", "", True),
        (
            "ingest with / without a sealer (pooled)",
            f"{with_sealer / without:.1%}",
            ">= 95%",
            with_sealer >= 0.95 * without,
        ),
        ("sealer process CPU while ingesting", f"{max(sealer_cpu):.1%} of a core", "", True),
    ]
    if backlog >= MIN_BACKLOG:
        checks[2:2] = [("sealing throughput (backlog)", f"{seal_rate:,.0f} rec/s", "", True)]
        checks += [
            ("sealing / ingest", f"{seal_rate / ingest_records:.1f}x", "> 10x", seal_rate > 10 * ingest_records),
            ("sealing cost at this ingest rate", f"{ingest_records / seal_rate:.2%} of the time", "", True),
        ]
    else:  # a rerun on a database already sealed: its few new records time Django's start, not sealing
        print(f"sealing throughput not measured: a backlog of {backlog:,} records (< {MIN_BACKLOG:,}); a new database")
    print(f"\nhistory: {total:,} records; sealed {backlog:,} in {seal_seconds:.1f} s (peak RSS {seal_rss:.0f} MiB)")
    print(f"verify_history {verify_seconds:.1f} s (peak RSS {verify_rss:.0f} MiB), script {script_seconds:.1f} s")
    print(
        f"ingest events/s without the sealer {[round(r) for r in rates['without']]}, "
        f"with {[round(r) for r in rates['with']]} ({sealer_blocks} blocks sealed while ingesting)"
    )
    print(
        f"with / without per round: {' '.join(f'{r:.1%}' for r in pairs)}; "
        f"median {statistics.median(pairs):.1%}, min {min(pairs):.1%}, max {max(pairs):.1%}"
    )
    print(f"after the run: {final_out} (verified in {final_seconds:.1f} s)")
    print(f"load average at the end: {' '.join(f'{v:.1f}' for v in os.getloadavg())} ({os.cpu_count()} CPUs)")
    print(f"{'figure':<42} {'measured':>16} {'target':>8}  result")
    for name, measured, target, ok in checks:
        print(f"{name:<42} {measured:>16} {target:>8}  {'met' if ok else 'NOT MET'}")


if __name__ == "__main__":
    main()
