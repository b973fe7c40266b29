"""Support console and statement cost against history length: 1,000,000 events against 100.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/amani_bench .venv/bin/python bench/bench_console.py

1. The two wallets of bench_balance.py ("big": 1,000,000 events over ~3 years, "small":
   100), built the same way unless a previous run (bench_balance.py's included) left them
   intact; each gets 30 daily provider balance reports over the last month (so the
   reconciliation, the chart's marks and the timeline's report rows are all drawn).
2. Times, through Django's test client (the whole middleware stack and rendering):
   - the console: GET /admin/wallets/wallet/<pk>/change/ as a logged-in support user
     (balances now, reconciliation, the 90-day chart, a 50-row timeline);
   - a statement page: GET /api/v1/wallets/{id}/statement (signed, 100 entries) at the
     start of the history (no `from`), from the middle of a busy day halfway through
     (the opening reads up to half that day's events), and, 20 entries a page, the second
   page (by its cursor: the balance through the first page's last entry).
3. Prints median and p99 per case and the big/small ratio of the medians; the target is
   <= 2x. Exit status 1 when a ratio misses it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_balance import (
    DEFAULT_URL,
    HISTORY,
    WALLETS,
    database_create,
    django_setup,
    summary,
    timed_pair,
    wallet_prepare,
)

TARGET_RATIO = 2.0
REPORT_DAYS = 30


def log(message: str) -> None:
    print(f"[bench_console {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def reports_prepare(wallet, now: dt.datetime) -> None:
    """One provider balance report a day over the last month, unless they are there."""
    from amani.actors import Actor
    from events.models import ProviderBalanceReport
    from events.reconciliation import provider_balance_record

    if ProviderBalanceReport.objects.filter(wallet=wallet).count() >= REPORT_DAYS:
        return
    for days in range(REPORT_DAYS, 0, -1):
        provider_balance_record(
            wallet=wallet,
            currency="NGN",
            available=Decimal(days * 1000),
            reported_at=now - dt.timedelta(days=days),
            actor=Actor.command("bench_console"),
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repetitions", type=int, default=200, help="Timed calls per case (default 200).")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    database_create(url)
    django_setup(url)

    from django.contrib.auth import get_user_model
    from django.test import Client

    from access.services import api_client_create
    from amani import signing

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    wallets = {label: wallet_prepare(label, count, now) for label, count in WALLETS.items()}
    for wallet in wallets.values():
        reports_prepare(wallet, now)

    user, _ = get_user_model().objects.get_or_create(
        username="bench-console", defaults={"is_staff": True, "is_superuser": True}
    )
    browser = Client()
    browser.force_login(user)
    _, issued = api_client_create(name=f"bench-console-{time.time_ns()}", scopes=["events:read"])
    api = Client()

    def console(wallet) -> Callable[[], object]:
        path = f"/admin/wallets/wallet/{wallet.pk}/change/"

        def call() -> None:
            response = browser.get(path)
            if response.status_code != 200 or b'id="timeline"' not in response.content:
                raise SystemExit(f"console HTTP {response.status_code}")

        return call

    def statement_get(wallet, query: str) -> dict:
        path = f"/api/v1/wallets/{wallet.public_id}/statement"
        header = signing.authorization_header(
            key_id=issued.key_id, secret=issued.secret, method="GET", path=path, query=query
        )
        response = api.get(f"{path}?{query}", headers={"Authorization": header})
        if response.status_code != 200:
            raise SystemExit(f"statement HTTP {response.status_code}: {response.content[:300]!r}")
        return response.json()

    middle = (now - HISTORY / 2).replace(hour=13, minute=0, second=0).isoformat().replace("+00:00", "Z")
    first_query = "currency=NGN&limit=100"
    middle_query = f"currency=NGN&limit=100&from={middle}"
    # 20 entries a page, so that the 100-event wallet has a second page too (46 NGN entries from `middle`).
    next_query = f"currency=NGN&limit=20&from={middle}"

    def statement(wallet, query: str, follow: bool = False) -> Callable[[], object]:
        if follow:  # the page after the first one, by its cursor (issued once; cursors do not expire)
            cursor = statement_get(wallet, query)["next_cursor"]
            query = f"{query}&cursor={cursor}" if cursor else query
        return lambda: statement_get(wallet, query)

    for label, wallet in wallets.items():
        body = statement_get(wallet, middle_query)
        log(f"{label}: statement from {middle}: {len(body['entries'])} entries, closing {body['closing']}")

    cases = {
        "console page": console,
        "statement first page": lambda w: statement(w, first_query),
        "statement mid-history": lambda w: statement(w, middle_query),
        "statement page 2 (20)": lambda w: statement(w, next_query, follow=True),
    }
    results = {}
    for name, make in cases.items():
        small, big = timed_pair(make(wallets["small"]), make(wallets["big"]), args.repetitions)
        results[name] = (summary(small), summary(big))

    print(f"support console and statement: {args.repetitions} timed calls per case, the two wallets alternating")
    print(f"{'case':<24}{'100 events med/p99 ms':>24}{'1,000,000 events med/p99 ms':>31}{'ratio (med)':>13}")
    failed = False
    for name, (small, big) in results.items():
        ratio = big[0] / small[0]
        failed |= ratio > TARGET_RATIO
        print(f"{name:<24}{small[0]:>13.3f} / {small[1]:<8.3f}{big[0]:>20.3f} / {big[1]:<8.3f}{ratio:>12.2f}x")
    print(f"target: ratio <= {TARGET_RATIO:.0f}x -> {'FAIL' if failed else 'PASS'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
