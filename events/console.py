"""Reads behind the support console (events/admin_console.py): the timeline, the chart's series, the search.

Each is a bounded number of statements whatever the wallet's history: the timeline
reads at most `limit + 1` rows from each source (one index range scan each), the chart
one statement over the day buckets, the search one statement of index probes.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Case, CharField, F, Q, QuerySet, Sum, UUIDField, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from amani.api.pagination import cursor_invalid, cursor_issue, cursor_read
from audit.models import AuditRecord, AuditResource
from events.models import BalanceBucket, ProviderBalanceReport, WalletEvent
from wallets.models import Provider, Wallet

# --- the timeline -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineFilters:
    """What the console's filter bar narrows the timeline to; None is "any"."""

    kind: str | None = None
    event_type: str | None = None
    currency: str | None = None
    occurred_from: dt.datetime | None = None
    occurred_to: dt.datetime | None = None

    def key(self) -> str:
        """The filters as text, for binding a cursor to them."""
        instants = [
            None if t is None else t.astimezone(dt.UTC).isoformat() for t in (self.occurred_from, self.occurred_to)
        ]
        return ":".join(value or "" for value in (self.kind, self.event_type, self.currency, *instants))


@dataclass(frozen=True)
class TimelineRow:
    """One thing that happened to a wallet, as the console lists it."""

    at: dt.datetime
    kind: str
    pk: int
    title: str
    detail: str = ""
    amount: Decimal | None = None
    currency: str | None = None
    detail_url_name: str = ""


@dataclass(frozen=True)
class TimelineSource:
    """One kind of row: how to read a wallet's rows of that kind, newest first.

    `rows(wallet, filters)` returns a queryset already narrowed by the filters the kind
    understands; `time_field` orders it. A kind that cannot satisfy a filter (an audit
    record has no currency) says so in `accepts`. An app above events adds its own kind with
    `timeline_source_add` (webhooks does, for provider deliveries) so that events never imports it.
    """

    kind: str
    label: str
    time_field: str
    rows: Callable[[Wallet, TimelineFilters], QuerySet]
    render: Callable[[object], TimelineRow]
    accepts: Callable[[TimelineFilters], bool] = field(default=lambda filters: True)


def _event_rows(wallet: Wallet, filters: TimelineFilters) -> QuerySet:
    # The row shows no metadata: not loaded, so no stored document (however deep) can break the page.
    rows = WalletEvent.objects.filter(wallet_id=wallet.pk).defer("metadata")
    if filters.event_type:
        rows = rows.filter(event_type=filters.event_type)
    if filters.currency:
        rows = rows.filter(currency=filters.currency)
    return rows


def _event_row(event: WalletEvent) -> TimelineRow:
    return TimelineRow(
        at=event.occurred_at,
        kind="event",
        pk=event.pk,
        title=event.event_type,
        detail=f"provider event {event.provider_event_id}" if event.provider_event_id else "",
        amount=event.amount,
        currency=event.currency,
        detail_url_name="admin:events_walletevent_change",
    )


def _audit_rows(wallet: Wallet, filters: TimelineFilters) -> QuerySet:
    # The records about the wallet itself (registration, status changes, repairs): each event's
    # own ingest record would repeat the event row.
    # Only the reason is shown: read as text by PostgreSQL, the details document itself is not loaded.
    records = AuditRecord.objects.filter(resource_id=str(wallet.public_id))
    return records.annotate(reason=KeyTextTransform("reason", "details")).defer("details")


def _audit_row(record: AuditRecord) -> TimelineRow:
    reason = record.reason
    who = f"{record.get_actor_type_display()} {record.actor_id}".strip()
    return TimelineRow(
        at=record.created_at,
        kind="audit",
        pk=record.pk,
        title=record.action,
        detail="; ".join(part for part in (f"by {who}", f"reason: {reason}" if reason else "") if part),
        detail_url_name="admin:audit_auditrecord_change",
    )


def _report_rows(wallet: Wallet, filters: TimelineFilters) -> QuerySet:
    rows = ProviderBalanceReport.objects.filter(wallet_id=wallet.pk)
    return rows.filter(currency=filters.currency) if filters.currency else rows


def _report_row(report: ProviderBalanceReport) -> TimelineRow:
    return TimelineRow(
        at=report.reported_at,
        kind="report",
        pk=report.pk,
        title="provider balance report",
        detail="available" + ("" if report.ledger is None else f", ledger {report.ledger.normalize():f}"),
        amount=report.available,
        currency=report.currency,
        detail_url_name="admin:events_providerbalancereport_change",
    )


TIMELINE_SOURCES: list[TimelineSource] = [
    TimelineSource("event", "Events", "occurred_at", _event_rows, _event_row),
    TimelineSource(
        "audit",
        "Audit records",
        "created_at",
        _audit_rows,
        _audit_row,
        accepts=lambda filters: not filters.event_type and not filters.currency,
    ),
    TimelineSource(
        "report",
        "Provider balance reports",
        "reported_at",
        _report_rows,
        _report_row,
        accepts=lambda filters: not filters.event_type,
    ),
]


def timeline_source_add(source: TimelineSource) -> None:
    """Add a kind of row to every wallet's timeline (called from an app's `ready()`, once)."""
    if all(existing.kind != source.kind for existing in TIMELINE_SOURCES):
        TIMELINE_SOURCES.append(source)


def timeline_kind_choices() -> list[tuple[str, str]]:
    """The filter bar's kinds, read when the form is built: apps add theirs after events loads."""
    return [("", "any kind"), *((source.kind, source.label) for source in TIMELINE_SOURCES)]


@dataclass(frozen=True)
class TimelinePage:
    rows: list[TimelineRow]
    next_cursor: str | None


def _rank(kind: str) -> int:
    return next(index for index, source in enumerate(TIMELINE_SOURCES) if source.kind == kind)


def wallet_timeline(
    *, wallet: Wallet, filters: TimelineFilters, limit: int = 50, cursor: str | None = None
) -> TimelinePage:
    """Events, audit records and provider reports of `wallet` interleaved, newest first.

    Ordered by (time, source, id) descending. One statement per source, each an index
    range scan of at most `limit + 1` rows starting at the cursor, so the cost of a page
    does not grow with the history or the page number; no COUNT. The cursor is bound to
    the wallet and the filters: raises DRF's ValidationError for any other.
    """
    listing = f"wallet-timeline:{wallet.public_id}:{filters.key()}"
    after = None
    if cursor:
        try:
            at, rank, pk = cursor_read(listing, cursor)
            after = (dt.datetime.fromisoformat(at), int(rank), int(pk))
        except (ValueError, TypeError):
            raise cursor_invalid() from None
    candidates: list[tuple[tuple[dt.datetime, int, int], TimelineRow]] = []
    for rank, source in enumerate(TIMELINE_SOURCES):
        if (filters.kind and filters.kind != source.kind) or not source.accepts(filters):
            continue
        time = source.time_field
        rows = source.rows(wallet, filters)
        if filters.occurred_from:
            rows = rows.filter(**{f"{time}__gte": filters.occurred_from})
        if filters.occurred_to:
            rows = rows.filter(**{f"{time}__lte": filters.occurred_to})
        if after is not None:
            at, after_rank, after_pk = after
            if rank < after_rank:
                rows = rows.filter(**{f"{time}__lte": at})
            elif rank == after_rank:
                rows = rows.filter(Q(**{f"{time}__lt": at}) | Q(**{time: at}, pk__lt=after_pk), **{f"{time}__lte": at})
            else:
                rows = rows.filter(**{f"{time}__lt": at})
        for row in rows.order_by(f"-{time}", "-pk")[: limit + 1]:
            rendered = source.render(row)
            candidates.append(((rendered.at, rank, rendered.pk), rendered))
    candidates.sort(key=lambda candidate: candidate[0], reverse=True)
    page = candidates[:limit]
    next_cursor = None
    if len(candidates) > limit:
        at, rank, pk = page[-1][0]
        next_cursor = cursor_issue(listing, [at.isoformat(), rank, pk])
    return TimelinePage(rows=[row for _, row in page], next_cursor=next_cursor)


# --- the chart --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DayBalance:
    day: dt.date
    ledger: Decimal
    held: Decimal

    @property
    def available(self) -> Decimal:
        return self.ledger - self.held


def wallet_balance_series(*, wallet: Wallet, start: dt.date, end: dt.date) -> dict[str, list[DayBalance]]:
    """Per currency, the balance at the end of each UTC day from `start` to `end` with activity.

    The first point of each currency is its balance at the end of the day before `start`
    (the sum of every earlier bucket); then one point per bucket in the range. One
    statement over the day buckets: the earlier days summed per currency, UNION ALL the
    range's buckets.
    """
    buckets = BalanceBucket.objects.filter(wallet_id=wallet.pk)
    before = (
        buckets.filter(day__lt=start)
        .order_by()
        .values("currency")
        .annotate(
            point=Value(None, output_field=BalanceBucket._meta.get_field("day")),
            sum_ledger=Sum("ledger"),
            sum_held=Sum("held"),
        )
        .values_list("currency", "point", "sum_ledger", "sum_held")
    )
    within = buckets.filter(day__gte=start, day__lte=end).values_list("currency", "day", "ledger", "held")
    series: dict[str, list[DayBalance]] = {}
    totals: dict[str, tuple[Decimal, Decimal]] = {}
    rows = sorted(before.union(within, all=True), key=lambda row: (row[0], row[1] or dt.date.min))
    day_before = start - dt.timedelta(days=1)
    for currency, day, ledger, held in rows:
        ledger_total, held_total = totals.get(currency, (Decimal(0), Decimal(0)))
        ledger_total, held_total = ledger_total + Decimal(ledger), held_total + Decimal(held)
        totals[currency] = (ledger_total, held_total)
        series.setdefault(currency, []).append(DayBalance(day or day_before, ledger_total, held_total))
    return series


def wallet_balance_reports(
    *, wallet: Wallet, reported_from: dt.datetime, reported_to: dt.datetime, limit: int = 500
) -> list[ProviderBalanceReport]:
    """The wallet's provider balance reports in a period, the newest `limit`, for the chart's marks.

    One index range scan (ix_report_wallet_reported). Not reconciled one by one: the
    reconstruction of every report would cost O(reports x days); the chart places each
    mark at the reported value, so a mark off the available line is a drift to the eye,
    and the latest report of each currency carries its reconciled status.
    """
    rows = ProviderBalanceReport.objects.filter(
        wallet_id=wallet.pk, reported_at__gte=reported_from, reported_at__lte=reported_to
    )
    return list(rows.order_by("-reported_at", "-id")[:limit])


# --- the search -------------------------------------------------------------------------------------


def wallet_search(*, term: str, limit: int = 100) -> list[int]:
    """Pks of the wallets an identifier belongs to, however it was pasted; exact matches only.

    Wallet id, user id, provider account id, provider customer id or registration
    idempotency key; an event's id, provider event id or idempotency key; an audit
    record's request id (the wallet it changed, or the wallet of the event or report it
    wrote). One statement, a UNION of equalities each served by an index.
    """
    term = term.strip()
    if not term or "\x00" in term or len(term) > 255:
        return []
    try:
        as_uuid: uuid.UUID | None = uuid.UUID(term)
    except ValueError:
        as_uuid = None
    wallets = Wallet.objects.order_by()
    events = WalletEvent.objects.order_by()
    branches: list[QuerySet] = [
        wallets.filter(provider_account_id=term).values_list("pk"),
        wallets.filter(provider_customer_id=term).values_list("pk"),
        wallets.filter(idempotency_key=term).values_list("pk"),
        # One probe of uq_event_provider_event per provider.
        events.filter(provider__in=Provider.values, provider_event_id=term).values_list("wallet_id"),
        events.filter(idempotency_key=term).values_list("wallet_id"),
    ]
    if as_uuid is not None:
        branches += [
            wallets.filter(public_id=as_uuid).values_list("pk"),
            wallets.filter(user_id=as_uuid).values_list("pk"),
            events.filter(public_id=as_uuid).values_list("wallet_id"),
        ]
    # A request id: the audit records it wrote name the wallet (its own records) or carry its id.
    written = (
        AuditRecord.objects.filter(request_id=term)
        .exclude(request_id="")
        .annotate(
            wallet_text=Case(
                When(resource_type=AuditResource.WALLET, then=F("resource_id")),
                default=KeyTextTransform("wallet_id", "details"),
                output_field=CharField(),
            )
        )
        .filter(wallet_text__regex=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
        .values(public=Cast("wallet_text", UUIDField()))
    )
    branches.append(wallets.filter(public_id__in=written).values_list("pk"))
    first, *rest = branches
    pks = {pk for (pk,) in first.union(*rest, all=False)[:limit]}
    return sorted(pks)
