"""Provider webhook deliveries (new and duplicate) beside a signed single ingest, through gunicorn, in one run.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/amani_bench .venv/bin/python -m bench.bench_webhooks

Alone, it creates the database when missing (never drops anything), migrates it, makes
an API client, starts gunicorn on a free loopback port with a Paystack secret (the
environment bench.run gives its server) and stops it at the end. Run by `make bench`
(bench/run.py's extras), it uses the server already up (BENCH_BASE_URL) and its key.

Three kinds of request, each from C client processes on keep-alive connections, in R
interleaved rounds (the load of a shared machine drifts; every kind sees the same drift):

  I1 ingest (new)         signed POST …/events/ingest of new events on the same wallets: the issue's budget
  W1 webhook (new)        Paystack charge.success for a registered customer, a new reference each: `created`
  W2 webhook (duplicate)  the round's W1 deliveries again, as a provider's retries: `duplicate`

It prints events/s, p50, p99 and CPU ms per request (gunicorn, PostgreSQL) of each and the
webhook/ingest ratios (compare figures of one run, never across runs), then checks the outcomes the
deliveries were stored with. Exit status 1 when a response or a stored outcome is not
the expected one.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

from bench import cpu, loadgen, run

HOST = run.HOST
RUN = uuid.uuid4().hex[:8]
# Paystack's documented charge.success sample; each delivery changes its reference, amount and customer.
SAMPLE = json.loads((run.ROOT / "webhooks" / "tests" / "fixtures" / "paystack_charge_success.json").read_bytes())


INGEST, NEW, DUPLICATE = "I1 ingest (new)", "W1 webhook (new)", "W2 webhook (duplicate)"


def log(message: str) -> None:
    print(f"[bench_webhooks {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def wallets_create(database_url: str, count: int) -> list[dict[str, str]]:
    """Paystack wallets the deliveries name by customer code (one INSERT)."""
    customers = [f"CUS_bench_{RUN}_{i}" for i in range(count)]
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "INSERT INTO wallets_wallet (public_id, user_id, provider, provider_account_id, provider_customer_id, "
            "metadata, is_active, created_at, updated_at) "
            "SELECT gen_random_uuid(), gen_random_uuid(), 'paystack', 'acct_' || c, c, '{}', true, now(), now() "
            "FROM unnest(%s::text[]) AS c RETURNING public_id, provider_customer_id",
            [customers],
        ).fetchall()
    return [{"id": str(public_id), "customer": customer} for public_id, customer in rows]


def delivery_bytes(port: int, secret: bytes, wallets: list[dict[str, str]], worker: int, i: int) -> bytes:
    """One signed Paystack delivery, as Paystack sends it (compact JSON)."""
    data = dict(SAMPLE["data"])
    data["reference"] = f"bench-{RUN}-{worker}-{i}"
    data["amount"] = 100 + (worker * 7919 + i) % 1_000_000
    data["customer"] = dict(data["customer"], customer_code=wallets[(worker * 7919 + i) % len(wallets)]["customer"])
    body = json.dumps({"event": SAMPLE["event"], "data": data}, separators=(",", ":")).encode()
    signature = hmac.new(secret, body, hashlib.sha512).hexdigest()
    head = (
        f"POST /api/v1/webhooks/paystack HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
        f"X-Paystack-Signature: {signature}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _delivery_worker(result, barrier, port: int, secret: bytes, wallets, worker: int, count: int, duration: float):
    # As loadgen's HTTP worker, with Paystack's signature header instead of the HMAC scheme.
    prepared = [delivery_bytes(port, secret, wallets, worker, i) for i in range(count)]
    connection = loadgen.HttpConnection(HOST, port)
    connection.sock = connection._connect()
    barrier.wait()
    result.started = time.perf_counter()
    deadline = result.started + duration
    for raw in prepared:
        began = time.perf_counter()
        status, _ = connection.exchange(raw)
        done = time.perf_counter()
        result.latencies.append(done - began)
        result.statuses[status] += 1
        if done > deadline:
            break
    result.finished = time.perf_counter()
    result.count = len(result.latencies)
    connection.close()


def ingest_builder(wallets: list[dict[str, str]], worker: str):
    def build(i: int) -> loadgen.RequestSpec:
        body = {
            "event_type": "deposit",
            "amount": f"{1 + i % 10000}.00",
            "currency": "NGN",
            "provider_event_id": f"bench-ingest-{RUN}-{worker}-{i}",
            "occurred_at": "2026-11-20T14:02:18Z",
        }
        wallet = wallets[(hash(worker) + i * 7919) % len(wallets)]
        return ("POST", f"/api/v1/wallets/{wallet['id']}/events/ingest", "", json.dumps(body).encode())

    return build


def server_pid_find(port: int) -> int:
    """The gunicorn master serving `port` (its workers are its children)."""
    processes = cpu.snapshot().processes
    for pid, (command, parent, _) in processes.items():
        if "gunicorn" in command and f"{HOST}:{port}" in command and "gunicorn" not in processes.get(parent, ("",))[0]:
            return pid
    raise SystemExit(f"no gunicorn process serves {HOST}:{port}")


@dataclass
class Totals:
    """One kind of request, summed over the rounds it ran in."""

    requests: int = 0
    seconds: float = 0.0
    app_cpu: float = 0.0
    pg_cpu: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, float]:
        latencies = sorted(self.latencies) or [float("nan")]
        count = self.requests or 1
        return {
            "events_per_s": self.requests / self.seconds if self.seconds else 0.0,
            "p50_ms": latencies[round(0.50 * (len(latencies) - 1))] * 1000,
            "p99_ms": latencies[round(0.99 * (len(latencies) - 1))] * 1000,
            "app_ms": self.app_cpu * 1000 / count,
            "pg_ms": self.pg_cpu * 1000 / count,
        }


class Phases:
    """Runs phases, adding each one's requests, time, latencies and CPU (gunicorn, PostgreSQL) to its kind."""

    def __init__(self, port: int, database: str) -> None:
        self.server_pid = server_pid_find(port)
        self.database = database
        self.totals: dict[str, Totals] = {}

    def run(
        self, name: str, phase: Callable[..., loadgen.PhaseResult], *args: Any, **kwargs: Any
    ) -> loadgen.PhaseResult:
        before = cpu.snapshot()
        started = time.monotonic()
        result = phase(*args, **kwargs)
        elapsed = time.monotonic() - started
        use = cpu.usage(
            before,
            cpu.snapshot(),
            server_pid=self.server_pid,
            elapsed=elapsed,
            database=self.database,
            new_backends=True,
        )
        totals = self.totals.setdefault(name, Totals())
        totals.requests += result.count
        totals.seconds += result.elapsed
        totals.app_cpu += use["server"] * elapsed
        totals.pg_cpu += use["postgres"] * elapsed
        totals.latencies += [v for worker in result.workers for v in worker.latencies]
        totals.statuses.update(result.statuses)
        totals.errors += result.errors
        return result


def measure(
    port: int, database: str, secret: bytes, key: dict[str, str], wallets, clients: int, duration: float, rounds: int
) -> bool:
    """`rounds` rounds of I1, W1, W2 (each phase duration/rounds s): the load of a shared machine drifts,
    and interleaving puts every kind of request under the same drift."""
    slot = duration / rounds
    per_worker = int(slot * 1500)
    phases = Phases(port, database)
    loadgen._run_workers(_delivery_worker, [(port, secret, wallets, 1000 + w, 200, 1.0) for w in range(clients)], 120)
    for r in range(rounds):
        builders = [ingest_builder(wallets, f"{r}-{w}") for w in range(clients)]
        phases.run(
            INGEST,
            loadgen.http_phase,
            host=HOST,
            port=port,
            keys=[key],
            builders=builders,
            count=per_worker,
            duration=slot,
        )
        new_args = [(port, secret, wallets, r * clients + w, per_worker, slot) for w in range(clients)]
        new = phases.run(NEW, loadgen._run_workers, _delivery_worker, new_args, slot + 120)
        # The same deliveries again, as many as every client sent: a provider's retries.
        sent = min(worker.count for worker in new.workers) or 1
        retry_args = [(port, secret, wallets, r * clients + w, sent, slot) for w in range(clients)]
        phases.run(DUPLICATE, loadgen._run_workers, _delivery_worker, retry_args, slot + 120)

    print(
        f"\n{'webhooks (' + str(clients) + ' clients)':<26} {'events/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'app ms/ev':>9} {'pg ms/ev':>8}  statuses"
    )
    figures = {}
    for name in (INGEST, NEW, DUPLICATE):
        totals = phases.totals[name]
        figures[name] = totals.figures()
        f = figures[name]
        print(
            f"{name:<26} {f['events_per_s']:>9,.0f} {f['p50_ms']:>8.2f} {f['p99_ms']:>8.2f} {f['app_ms']:>9.2f} "
            f"{f['pg_ms']:>8.2f}  {dict(totals.statuses)}{' ' + '; '.join(totals.errors) if totals.errors else ''}"
        )
    for name in (NEW, DUPLICATE):
        ratios = ", ".join(
            f"{label} {figures[name][k] / figures[INGEST][k]:.2f}x"
            for label, k in [("throughput", "events_per_s"), ("p50", "p50_ms"), ("p99", "p99_ms"),
                             ("app CPU", "app_ms"), ("pg CPU", "pg_ms")]
        )  # fmt: skip
        print(f"{name.split(' ', 1)[1]} / ingest: {ratios}")
    return all(
        set(phases.totals[name].statuses) == {expect} and not phases.totals[name].errors
        for name, expect in ((INGEST, 201), (NEW, 200), (DUPLICATE, 200))
    )


def outcomes_check(database_url: str) -> bool:
    with psycopg.connect(database_url) as conn:
        found = dict(
            conn.execute(
                "SELECT outcome, count(*) FROM webhooks_webhookdelivery WHERE reference LIKE %s GROUP BY outcome",
                [f"bench-{RUN}-%"],
            ).fetchall()
        )
        events = conn.execute(
            "SELECT count(*) FROM events_walletevent WHERE provider = 'paystack' AND provider_event_id LIKE %s",
            [f"bench-{RUN}-%"],
        ).fetchone()[0]
    print(f"stored outcomes: {found}; events from webhooks: {events}")
    return set(found) <= {"created", "duplicate"} and found.get("created") == events


def standalone_server(database_url: str, secret: str, logdir: Path):
    """Database (created when missing), migrations, an API client, gunicorn: for a run without bench.run."""
    parts = psycopg.conninfo.conninfo_to_dict(database_url)
    name = parts.pop("dbname")
    with psycopg.connect(psycopg.conninfo.make_conninfo(**parts, dbname="postgres"), autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            admin.execute(f'CREATE DATABASE "{name}"')
    env = dict(run.server_env(database_url), PAYSTACK_SECRET_KEY=secret)
    subprocess.run([run.PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=run.ROOT, env=env, check=True)
    created = subprocess.run(
        [run.PYTHON, "manage.py", "create_api_client", f"bench-webhooks-{RUN}", "--scopes", "events:write", "--json"],
        cwd=run.ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    port = run.free_port()
    options = argparse.Namespace(profile=False, workers=None, threads=None, worker_class=None)
    return run.server_start(env, port, options, logdir), port, json.loads(created)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL")
        or os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/amani_bench"),
    )
    parser.add_argument("--duration", type=float, default=12.0, help="seconds of each kind of request, in all")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds of the three kinds")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--wallets", type=int, default=1000)
    args = parser.parse_args(argv)
    secret = os.environ.get("PAYSTACK_SECRET_KEY", "").split(",")[0] or run.BENCH_PAYSTACK_SECRET
    server = None
    if os.environ.get("BENCH_BASE_URL"):
        port = urlsplit(os.environ["BENCH_BASE_URL"]).port
        key = {"key_id": os.environ["BENCH_KEY_ID"], "secret": os.environ["BENCH_SECRET"]}
    else:
        logdir = Path(tempfile.mkdtemp(prefix="amani-bench-webhooks-"))
        log(f"database {args.database_url}; gunicorn log in {logdir}")
        server, port, key = standalone_server(args.database_url, secret, logdir)
    try:
        wallets = wallets_create(args.database_url, args.wallets)
        database = urlsplit(args.database_url).path.lstrip("/")
        ok = measure(port, database, secret.encode(), key, wallets, args.clients, args.duration, args.rounds)
        ok = outcomes_check(args.database_url) and ok
    finally:
        if server is not None:
            run.server_stop(server)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
