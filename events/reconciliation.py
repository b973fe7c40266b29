"""Provider balance reports and their reconciliation against the balances reconstructed from events.

The latest report of a wallet and currency (greatest `reported_at`, then the latest
recorded) is compared with the balance as of its `reported_at`: `matched` when the
reported `available` (and `ledger`, when the provider sent one) equal the
reconstruction, else `drift`. The comparison is one SQL text built here, used by the
API, the `reconcile_balances` command and the admin, so they cannot disagree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from django.db import connection, transaction
from django.db.models.expressions import RawSQL

from amani.routers import read_connection
from audit.services import Actor, audit_record
from events.balances import CurrencyBalance, balance_lateral_sql
from events.models import ProviderBalanceReport
from wallets.models import Wallet

MATCHED = "matched"
DRIFT = "drift"
RESOURCE_TYPE = "provider_balance_report"
ACTION_RECORD = "record_provider_balance"


@dataclass(frozen=True)
class Reconciliation:
    """The latest report of one wallet and currency against the reconstructed balance."""

    wallet_id: UUID
    currency: str
    report_id: UUID
    reported_available: Decimal
    reported_ledger: Decimal | None
    reported_at: dt.datetime
    report_created_at: dt.datetime
    reconstructed: CurrencyBalance
    status: str

    @property
    def difference_available(self) -> Decimal:
        """Reported minus reconstructed."""
        return self.reported_available - self.reconstructed.available

    @property
    def difference_ledger(self) -> Decimal | None:
        """Reported minus reconstructed, or None when the provider did not report a ledger."""
        if self.reported_ledger is None:
            return None
        return self.reported_ledger - self.reconstructed.ledger


def provider_balance_record(
    *,
    wallet: Wallet,
    currency: str,
    available: Decimal,
    ledger: Decimal | None = None,
    reported_at: dt.datetime,
    actor: Actor,
) -> ProviderBalanceReport:
    """Store what the provider reported, with its audit record in the same transaction.

    Reports are kept, never replaced: reconciliation reads the latest by `reported_at`,
    so a report that arrives late for an earlier instant does not hide a newer one.
    """
    with transaction.atomic():
        report = ProviderBalanceReport.objects.create(
            wallet=wallet, currency=currency, available=available, ledger=ledger, reported_at=reported_at
        )
        audit_record(
            action=ACTION_RECORD,
            actor=actor,
            user_id=wallet.user_id,
            resource_type=RESOURCE_TYPE,
            resource_id=str(report.public_id),
            details={
                "wallet_id": str(wallet.public_id),
                "currency": currency,
                "available": str(available),
                "ledger": None if ledger is None else str(ledger),
                "reported_at": reported_at.isoformat(),
            },
        )
    return report


def _latest_reports_sql(*, wallet_condition: str, by_currency: bool) -> str:
    """One row per (wallet, currency): its latest report, with the columns the balance lateral needs."""
    reports = ProviderBalanceReport._meta.db_table
    currency = "AND p.currency = %s " if by_currency else ""
    return (
        "SELECT DISTINCT ON (p.wallet_id, p.currency) p.id, p.public_id, p.wallet_id, p.currency, "  # noqa: S608
        "p.available, p.ledger, p.reported_at, p.created_at, p.reported_at AS as_of, "
        "(p.reported_at AT TIME ZONE 'UTC')::date AS day, "
        "((p.reported_at AT TIME ZONE 'UTC')::date::timestamp AT TIME ZONE 'UTC') AS day_start "
        f"FROM {reports} p WHERE {wallet_condition} {currency}"
        "ORDER BY p.wallet_id, p.currency, p.reported_at DESC, p.id DESC"
    )


def reconciliation_sql(*, wallet_condition: str, by_currency: bool = False) -> str:
    """Reconciliation rows of the latest reports whose wallet satisfies `wallet_condition` (on `p`).

    Columns: wallet pk, currency, report public id, reported available and ledger,
    reported_at, report created_at, reconstructed ledger, held, event count, last
    event time, status. With `by_currency`, one `%s` parameter (the currency) follows
    those of `wallet_condition`.
    """
    reconstructed_ledger = "COALESCE(r.ledger, 0)"
    reconstructed_available = "(COALESCE(r.ledger, 0) - COALESCE(r.held, 0))"
    return (
        "SELECT t.wallet_id, t.currency, t.public_id, t.available, t.ledger, t.reported_at, t.created_at, "  # noqa: S608
        f"{reconstructed_ledger}, COALESCE(r.held, 0), COALESCE(r.event_count, 0), r.last_event_at, "
        f"CASE WHEN t.available = {reconstructed_available} "
        f"AND (t.ledger IS NULL OR t.ledger = {reconstructed_ledger}) THEN '{MATCHED}' ELSE '{DRIFT}' END AS status "
        f"FROM ({_latest_reports_sql(wallet_condition=wallet_condition, by_currency=by_currency)}) t "
        f"LEFT JOIN LATERAL ({balance_lateral_sql(by_currency=True)}) r ON TRUE"
    )


def _reconciliation(wallet_id: UUID, row: tuple) -> Reconciliation:
    (currency, report_id, available, ledger, reported_at, created_at) = row[1:7]
    (rec_ledger, rec_held, rec_count, rec_last, status) = row[7:]
    return Reconciliation(
        wallet_id=wallet_id,
        currency=currency,
        report_id=report_id,
        reported_available=available,
        reported_ledger=ledger,
        reported_at=reported_at,
        report_created_at=created_at,
        reconstructed=CurrencyBalance(
            currency=currency, ledger=rec_ledger, held=rec_held, event_count=rec_count, last_event_at=rec_last
        ),
        status=status,
    )


def reconciliation_get(*, wallet: Wallet, currency: str) -> Reconciliation | None:
    """The wallet's latest report in `currency` against the balance as of its `reported_at`; None without a report."""
    sql = reconciliation_sql(wallet_condition="p.wallet_id = %s", by_currency=True)
    with read_connection(ProviderBalanceReport).cursor() as cursor:
        cursor.execute(sql, [wallet.pk, currency])
        row = cursor.fetchone()
    return None if row is None else _reconciliation(wallet.public_id, row)


def reconciliation_list(*, status: str | None = None) -> Iterator[Reconciliation]:
    """Every wallet and currency with a report, optionally only those in `status`, by wallet then currency."""
    wallets = Wallet._meta.db_table
    sql = (
        f"SELECT w.public_id, s.* FROM ({reconciliation_sql(wallet_condition='TRUE')}) s "  # noqa: S608
        f"JOIN {wallets} w ON w.id = s.wallet_id"
    )
    params: list[object] = []
    if status is not None:
        sql += " WHERE s.status = %s"
        params.append(status)
    sql += " ORDER BY w.public_id, s.currency"
    # A server-side cursor: the rows stream, however many there are.
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(1000):
            yield from (_reconciliation(row[0], row[1:]) for row in rows)


def wallet_reconciliation_statuses(*, wallet_pks: Iterable[int]) -> dict[int, str]:
    """Wallet pk -> `drift` when any currency's latest report drifts, else `matched`; wallets without reports absent.

    One query for a whole changelist page.
    """
    pks = list(wallet_pks)
    if not pks:
        return {}
    sql = (
        f"SELECT s.wallet_id, CASE WHEN bool_or(s.status = '{DRIFT}') THEN '{DRIFT}' ELSE '{MATCHED}' END "  # noqa: S608
        f"FROM ({reconciliation_sql(wallet_condition='p.wallet_id = ANY(%s)')}) s GROUP BY s.wallet_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [pks])
        return dict(cursor.fetchall())


def wallets_in_status(status: str) -> RawSQL:
    """Pks of the wallets in `status` (as `wallet_reconciliation_statuses` decides it), for `filter(pk__in=...)`."""
    if status not in (DRIFT, MATCHED):
        raise ValueError(f"status must be {DRIFT!r} or {MATCHED!r}")
    having = "" if status == DRIFT else "NOT "
    sql = (
        f"SELECT s.wallet_id FROM ({reconciliation_sql(wallet_condition='TRUE')}) s "  # noqa: S608
        f"GROUP BY s.wallet_id HAVING {having}bool_or(s.status = '{DRIFT}')"
    )
    return RawSQL(sql, [])  # noqa: S611


def wallets_with_reports() -> RawSQL:
    """Pks of the wallets with at least one provider balance report, for `exclude(pk__in=...)`."""
    return RawSQL(f"SELECT DISTINCT p.wallet_id FROM {ProviderBalanceReport._meta.db_table} p", [])  # noqa: S608, S611
