"""Provider balance reports and their reconciliation against the balances reconstructed from events.

The latest report of a wallet and currency (greatest `reported_at`, then the latest
recorded) is compared with the balance as of its `reported_at`: `matched` when the
reported `available` (and `ledger`, when the provider sent one) equal the
reconstruction, else `drift`. One wallet (the API, the report's admin page) goes
through `events.balances.wallet_balances`; many (the wallet admin's column and filter,
`reconcile_balances`) through one set-based query whose correlated subqueries read the
same rows with the same sums (`balance_bucket_rows`, `balance_event_rows`, ...). The
comparison is `_reconciliation` for both, in Decimal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from django.db import transaction
from django.db.models import F, OuterRef, QuerySet, Subquery
from django.db.models.functions import TruncDate, TruncDay

from amani.actors import Actor
from audit.models import AuditAction, AuditResource
from audit.services import audit_record
from events.balances import (
    CurrencyBalance,
    balance_bucket_rows,
    balance_bucket_sums,
    balance_event_rows,
    balance_event_sums,
    wallet_balances,
)
from events.models import ProviderBalanceReport
from wallets.models import Wallet

MATCHED = "matched"
DRIFT = "drift"


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
            action=AuditAction.RECORD_PROVIDER_BALANCE,
            actor=actor,
            user_id=wallet.user_id,
            resource_type=AuditResource.PROVIDER_BALANCE_REPORT,
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


def _latest_reports() -> QuerySet[ProviderBalanceReport]:
    """The latest report of each wallet and currency (one probe of ix_report_wallet_latest per report)."""
    newest = (
        ProviderBalanceReport.objects.filter(wallet_id=OuterRef("wallet_id"), currency=OuterRef("currency"))
        .order_by("-reported_at", "-id")
        .values("pk")[:1]
    )
    return ProviderBalanceReport.objects.filter(pk=Subquery(newest))


def _with_reconstruction(reports: QuerySet[ProviderBalanceReport]) -> QuerySet[ProviderBalanceReport]:
    """Each report with the balance as of its `reported_at`, in the same statement.

    The rows and sums are wallet_balances' own (events.balances): the buckets of the
    whole UTC days before the report's day (and that day's, when it ends at or before
    `reported_at`) plus that day's events up to `reported_at` of the other currencies,
    here as correlated subqueries so a whole page or the whole table is still one query.
    """
    reports = reports.annotate(
        as_of_day=TruncDate("reported_at", tzinfo=dt.UTC),
        as_of_day_start=TruncDay("reported_at", tzinfo=dt.UTC),
        wallet_public_id=F("wallet__public_id"),
    )
    wallet, currency = OuterRef("wallet_id"), OuterRef("currency")
    halves = {
        "bucket": (
            balance_bucket_rows(
                wallet=wallet, day=OuterRef("as_of_day"), as_of=OuterRef("reported_at"), currency=currency
            ),
            balance_bucket_sums(),
        ),
        "event": (
            balance_event_rows(
                wallet=wallet,
                day=OuterRef("as_of_day"),
                day_start=OuterRef("as_of_day_start"),
                as_of=OuterRef("reported_at"),
                currency=currency,
            ),
            balance_event_sums(),
        ),
    }
    annotations = {}
    for half, (rows, sums) in halves.items():
        grouped = rows.order_by().values("wallet_id")
        for name, aggregate in sums.items():
            annotations[f"{half}_{name}"] = Subquery(grouped.annotate(value=aggregate).values("value"))
    return reports.annotate(**annotations)


def _reconstructed(report: ProviderBalanceReport) -> CurrencyBalance:
    """The balance `_with_reconstruction` annotated on `report`: the bucket half plus the event half."""

    def total(name: str) -> Decimal:
        values = (getattr(report, f"{half}_{name}") for half in ("bucket", "event"))
        return sum((Decimal(value) for value in values if value is not None), Decimal(0))

    instants = [at for at in (report.bucket_max_at, report.event_max_at) if at is not None]
    return CurrencyBalance(
        currency=report.currency,
        ledger=total("sum_ledger"),
        held=total("sum_held"),
        event_count=int(total("sum_count")),
        last_event_at=max(instants, default=None),
    )


def _reconciliation(
    *, wallet_id: UUID, report: ProviderBalanceReport, reconstructed: CurrencyBalance
) -> Reconciliation:
    """The comparison itself, in Decimal."""
    matched = report.available == reconstructed.available and (
        report.ledger is None or report.ledger == reconstructed.ledger
    )
    return Reconciliation(
        wallet_id=wallet_id,
        currency=report.currency,
        report_id=report.public_id,
        reported_available=report.available,
        reported_ledger=report.ledger,
        reported_at=report.reported_at,
        report_created_at=report.created_at,
        reconstructed=reconstructed,
        status=MATCHED if matched else DRIFT,
    )


def _annotated_reconciliation(report: ProviderBalanceReport) -> Reconciliation:
    return _reconciliation(wallet_id=report.wallet_public_id, report=report, reconstructed=_reconstructed(report))


def reconciliation_get(*, wallet: Wallet, currency: str) -> Reconciliation | None:
    """The wallet's latest report in `currency` against the balance as of its `reported_at`; None without a report.

    Two queries, the report then `wallet_balances` as of its `reported_at` (a cached
    statement: compiling the set-based form for one report would cost ten times more
    than running it). Both routed like any read (the replica inside reading_from_replica()).
    """
    report = (
        ProviderBalanceReport.objects.filter(wallet=wallet, currency=currency).order_by("-reported_at", "-id").first()
    )
    if report is None:
        return None
    balances = wallet_balances(wallet=wallet, as_of=report.reported_at, currency=currency)
    reconstructed = balances[0] if balances else CurrencyBalance(currency, Decimal(0), Decimal(0), 0, None)
    return _reconciliation(wallet_id=wallet.public_id, report=report, reconstructed=reconstructed)


def reconciliation_list(*, status: str | None = None) -> Iterator[Reconciliation]:
    """Every wallet and currency with a report, optionally only those in `status`, by wallet then currency.

    One query; the rows stream in chunks (a server-side cursor on PostgreSQL).
    """
    reports = _with_reconstruction(_latest_reports()).order_by("wallet__public_id", "currency")
    for report in reports.iterator(chunk_size=1000):
        reconciliation = _annotated_reconciliation(report)
        if status is None or reconciliation.status == status:
            yield reconciliation


def wallet_reconciliation_statuses(*, wallet_pks: Iterable[int]) -> dict[int, str]:
    """Wallet pk -> `drift` when any currency's latest report drifts, else `matched`; wallets without reports absent.

    One query for a whole changelist page.
    """
    pks = list(wallet_pks)
    if not pks:
        return {}
    statuses: dict[int, str] = {}
    for report in _with_reconstruction(_latest_reports().filter(wallet_id__in=pks)):
        if statuses.get(report.wallet_id) != DRIFT:
            statuses[report.wallet_id] = _annotated_reconciliation(report).status
    return statuses


def wallets_in_status(status: str) -> QuerySet[Wallet]:
    """Pks of the wallets in `status` (as `wallet_reconciliation_statuses` decides it), for `filter(pk__in=...)`.

    Decides every latest report once, in one query, when called.
    """
    if status not in (DRIFT, MATCHED):
        raise ValueError(f"status must be {DRIFT!r} or {MATCHED!r}")
    drifting = sorted(
        {
            report.wallet_id
            for report in _with_reconstruction(_latest_reports())
            if _annotated_reconciliation(report).status == DRIFT
        }
    )
    if status == DRIFT:
        return Wallet.objects.filter(pk__in=drifting).values("pk")
    return Wallet.objects.filter(pk__in=wallets_with_reports()).exclude(pk__in=drifting).values("pk")


def wallets_with_reports() -> QuerySet[ProviderBalanceReport]:
    """Pks of the wallets with at least one provider balance report, for `exclude(pk__in=...)`."""
    return ProviderBalanceReport.objects.values("wallet_id").distinct()


def wallet_reconciliations(*, wallet: Wallet) -> list[Reconciliation]:
    """The latest report of each of the wallet's currencies against the events, by currency; one query."""
    reports = _with_reconstruction(_latest_reports().filter(wallet_id=wallet.pk)).order_by("currency")
    return [_annotated_reconciliation(report) for report in reports]
