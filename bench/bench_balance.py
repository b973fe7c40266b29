"""Balance cost against history length: a wallet with 1,000,000 events against one with 100.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/amani_bench .venv/bin/python bench/bench_balance.py

1. Creates the database if it is missing and migrates it (it never drops anything).
2. Builds two wallets, unless a previous run left them intact (same event count and
   buckets that `verify_balances` finds clean): "big" with 1,000,000 events and
   "small" with 100, both spread over the last ~3 years (every event type, NGN and
   USD). Events are generated server-side (INSERT … SELECT from generate_series, no
   per-row round trip); their day buckets are then rebuilt from the events by the
   same code as `verify_balances --repair`, and checked clean.
3. Times the balance selector (`events.balances.wallet_balances`) and the signed HTTP
   endpoint (GET /api/v1/wallets/{id}/balance through Django's test client, the whole
   middleware, authentication and rendering stack) for both wallets, at two instants:
   "now" (the default `as_of`, today's bucket used whole) and the middle of a busy day
   halfway through the history (that day's events scanned, ~900 rows for "big").
4. Prints median and p99 per case and the big/small ratio of the medians; the target
   is <= 5x. Exit status 1 when a ratio misses it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/amani_bench"
TARGET_RATIO = 5.0
HISTORY = dt.timedelta(days=3 * 365)
WALLETS = {"big": 1_000_000, "small": 100}


def log(message: str) -> None:
    print(f"[bench_balance {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def database_create(url: str) -> None:
    parts = psycopg.conninfo.conninfo_to_dict(url)
    name = parts.pop("dbname")
    with psycopg.connect(psycopg.conninfo.make_conninfo(**parts, dbname="postgres"), autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def django_setup(url: str) -> None:
    os.environ.update(
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="amani.settings.base",
        DEBUG="false",  # DEBUG keeps every query in memory
        LOG_LEVEL="WARNING",
        ALLOWED_HOSTS="testserver",
    )
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-" + "x" * 40)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)


def wallet_prepare(label: str, events: int, now: dt.datetime):
    """The wallet with `events` events and clean buckets, built unless a previous run left it intact."""
    from django.db import connection, transaction

    from amani.actors import Actor
    from events.balances import balance_buckets_repair, balance_buckets_verify
    from events.models import BalanceBucket, WalletEvent
    from wallets.models import Wallet

    account = f"bench_balance_{label}_{events}"
    wallet, _ = Wallet.objects.get_or_create(
        provider="fincra",
        provider_account_id=account,
        defaults={"user_id": "00000000-0000-4000-8000-000000000001"},
    )
    started = time.perf_counter()
    if WalletEvent.objects.filter(wallet=wallet).count() == events and not any(
        True for _ in balance_buckets_verify(wallet=wallet)
    ):
        log(f"{label}: reusing {events:,} events and clean buckets ({time.perf_counter() - started:.1f}s to check)")
        return wallet

    log(f"{label}: building {events:,} events over {HISTORY.days} days")
    event_table = WalletEvent._meta.db_table
    bucket_table = BalanceBucket._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {event_table} WHERE wallet_id = %s", [wallet.pk])
        cursor.execute(f"DELETE FROM {bucket_table} WHERE wallet_id = %s", [wallet.pk])
        cursor.execute(
            f"INSERT INTO {event_table} (public_id, wallet_id, provider, event_type, amount, currency, "
            "provider_event_id, idempotency_key, metadata, occurred_at, created_at) "
            "SELECT gen_random_uuid(), %(wallet)s, 'fincra', "
            "(ARRAY['deposit','deposit','deposit','withdrawal','transfer_in','transfer_out','fee','fee',"
            "'refund','hold','release'])[1 + floor(random() * 11)::int], "
            "round((0.01 + random() * 50000)::numeric, 2), "
            "CASE WHEN random() < 0.9 THEN 'NGN' ELSE 'USD' END, "
            "%(prefix)s || i, NULL, '{}'::jsonb, "
            # Evenly through the history, jittered by up to a minute; never in the future.
            "%(start)s::timestamptz + %(span)s::interval * ((i - 1)::float8 / %(n)s) "
            "+ random() * interval '59 seconds', now() "
            "FROM generate_series(1, %(n)s) AS i",
            {
                "wallet": wallet.pk,
                "prefix": f"bench-balance-{label}-{wallet.pk}-",
                "start": now - HISTORY,
                "span": HISTORY - dt.timedelta(hours=1),
                "n": events,
            },
        )
    log(f"{label}: events inserted in {time.perf_counter() - started:.1f}s; rebuilding buckets")
    started = time.perf_counter()
    repaired = balance_buckets_repair(wallet=wallet, actor=Actor.command("bench_balance"))
    log(f"{label}: {len(repaired):,} buckets written in {time.perf_counter() - started:.1f}s")
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {event_table}")
        cursor.execute(f"ANALYZE {bucket_table}")
    started = time.perf_counter()
    mismatches = sum(1 for _ in balance_buckets_verify(wallet=wallet))
    log(f"{label}: verify_balances --wallet: {mismatches} mismatches in {time.perf_counter() - started:.2f}s")
    if mismatches:
        raise SystemExit("buckets do not match the events after the rebuild")
    return wallet


def timed_pair(small: Callable[[], object], big: Callable[[], object], repetitions: int) -> tuple[list, list]:
    """Alternate the two calls, so both see the same machine load (other processes come and go)."""
    for _ in range(min(20, repetitions)):
        small()
        big()
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(repetitions):
        for function, into in ((small, samples[0]), (big, samples[1])):
            started = time.perf_counter_ns()
            function()
            into.append((time.perf_counter_ns() - started) / 1e6)
    return samples


def summary(samples: list[float]) -> tuple[float, float]:
    return statistics.median(samples), statistics.quantiles(samples, n=100, method="inclusive")[98]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repetitions", type=int, default=500, help="Timed calls per case (default 500).")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    database_create(url)
    django_setup(url)

    from django.test import Client

    from access.services import api_client_create
    from amani import signing
    from events.balances import wallet_balances
    from events.models import WalletEvent

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    wallets = {label: wallet_prepare(label, count, now) for label, count in WALLETS.items()}
    # A busy day halfway through: for "big", its events are scanned (as_of falls inside it).
    middle = (now - HISTORY / 2).replace(hour=13, minute=0, second=0)
    in_day = WalletEvent.objects.filter(
        wallet=wallets["big"], occurred_at__gte=middle.replace(hour=0), occurred_at__lte=middle
    ).count()
    log(f"mid-history instant {middle.isoformat()}: {in_day} of big's events that day are scanned")

    _, issued = api_client_create(name=f"bench-balance-{time.time_ns()}", scopes=["events:read"])
    client = Client()

    def http(wallet, as_of: dt.datetime | None) -> Callable[[], object]:
        path = f"/api/v1/wallets/{wallet.public_id}/balance"
        query = "" if as_of is None else "as_of=" + as_of.isoformat().replace("+00:00", "Z")

        def call() -> None:
            header = signing.authorization_header(
                key_id=issued.key_id, secret=issued.secret, method="GET", path=path, query=query
            )
            response = client.get(path + (f"?{query}" if query else ""), headers={"Authorization": header})
            if response.status_code != 200:
                raise SystemExit(f"HTTP {response.status_code}: {response.content[:300]!r}")

        return call

    def selector(wallet, as_of: dt.datetime | None) -> Callable[[], object]:
        return lambda: wallet_balances(wallet=wallet, as_of=as_of or dt.datetime.now(dt.UTC))

    for label, wallet in wallets.items():
        balances = wallet_balances(wallet=wallet, as_of=dt.datetime.now(dt.UTC))
        log(f"{label}: " + ", ".join(f"{b.currency} count={b.event_count} ledger={b.ledger}" for b in balances))

    results: dict[tuple[str, str, str], tuple[float, float]] = {}
    for surface, make in (("selector", selector), ("http", http)):
        for instant, as_of in (("now", None), ("mid-day", middle)):
            small, big = timed_pair(make(wallets["small"], as_of), make(wallets["big"], as_of), args.repetitions)
            results[(surface, instant, "small")] = summary(small)
            results[(surface, instant, "big")] = summary(big)

    print(f"balance as of an instant: {args.repetitions} timed calls per case, the two wallets alternating")
    print(f"{'case':<22}{'100 events med/p99 ms':>24}{'1,000,000 events med/p99 ms':>31}{'ratio (med)':>13}")
    failed = False
    for surface in ("selector", "http"):
        for instant in ("now", "mid-day"):
            small = results[(surface, instant, "small")]
            big = results[(surface, instant, "big")]
            ratio = big[0] / small[0]
            failed |= ratio > TARGET_RATIO
            print(
                f"{surface + ' ' + instant:<22}{small[0]:>13.3f} / {small[1]:<8.3f}"
                f"{big[0]:>20.3f} / {big[1]:<8.3f}{ratio:>12.2f}x"
            )
    print(f"target: ratio <= {TARGET_RATIO:.0f}x -> {'FAIL' if failed else 'PASS'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
