"""The console's balance chart: server-side SVG, no script and nothing fetched from elsewhere.

Per currency, ledger and available as steps (a balance holds until the next day with
activity), and each provider balance report as a dot at what the provider said was
available: on the available line when it agrees, off it when it does not. The latest
report carries its reconciled status (red drift, green matched); earlier ones are grey.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from amani.money import amount_display
from events.console import DayBalance
from events.models import ProviderBalanceReport
from events.reconciliation import DRIFT, MATCHED, Reconciliation

WIDTH, HEIGHT = 880, 220
LEFT, RIGHT, TOP, BOTTOM = 110, 20, 16, 28
LEDGER_COLOUR, AVAILABLE_COLOUR = "#417690", "#2e7d32"
MARK_COLOURS = {DRIFT: "#ba2121", MATCHED: "#2e7d32", "": "#777"}


def balance_chart_svg(
    *,
    currency: str,
    points: list[DayBalance],
    reports: list[ProviderBalanceReport],
    latest: Reconciliation | None,
    start: dt.date,
    end: dt.date,
) -> SafeString:
    """One currency's chart from `start` to `end` (UTC days) as an inline <svg> element.

    `reports` are this currency's reports in the range; `latest` the reconciliation of its
    latest report (whether or not it falls in the range).
    """
    first = dt.datetime.combine(start, dt.time.min, tzinfo=dt.UTC)
    last = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
    span = (last - first).total_seconds()

    def x(moment: dt.datetime) -> float:
        seconds = min(max((moment - first).total_seconds(), 0), span)
        return LEFT + (WIDTH - LEFT - RIGHT) * seconds / span

    # Zero is always on the scale: a drop to nothing must look like one.
    values = [
        Decimal(0),
        *(v for p in points for v in (p.ledger, p.available)),
        *(r.available for r in reports),
    ]
    low, high = min(values), max(values)
    if low == high:
        low, high = low - 1, high + 1

    def y(value: Decimal) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * float((high - value) / (high - low))

    def steps(attribute: str) -> str:
        # A point's balance holds from the end of its day until the end of the next day with activity.
        coordinates: list[str] = []
        previous_y = None
        if points and points[0].day >= start:  # no activity before the range: the balance was zero
            previous_y = y(Decimal(0))
            coordinates.append(f"{x(first):.1f},{previous_y:.1f}")
        for point in points:
            at = x(dt.datetime.combine(point.day + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC))
            value_y = y(getattr(point, attribute))
            if previous_y is not None:
                coordinates.append(f"{at:.1f},{previous_y:.1f}")
            coordinates.append(f"{at:.1f},{value_y:.1f}")
            previous_y = value_y
        if previous_y is not None:
            coordinates.append(f"{x(last):.1f},{previous_y:.1f}")
        return " ".join(coordinates)

    lines = format_html_join(
        "",
        '<polyline fill="none" stroke="{}" stroke-width="2" points="{}"><title>{}</title></polyline>',
        ((LEDGER_COLOUR, steps("ledger"), "ledger"), (AVAILABLE_COLOUR, steps("available"), "available")),
    )

    def mark(report: ProviderBalanceReport) -> tuple[str, ...]:
        status = latest.status if latest is not None and latest.report_id == report.public_id else ""
        said = f"{report.reported_at:%Y-%m-%d %H:%M} UTC: provider said available "
        said += amount_display(report.available, currency)
        if status:
            said += f", {status} (difference {amount_display(latest.difference_available, currency)})"
        return (
            f"report-mark {status}".strip(),
            f"{x(report.reported_at):.1f}",
            f"{y(report.available):.1f}",
            MARK_COLOURS[status],
            said,
        )

    dots = format_html_join(
        "",
        '<circle class="{}" cx="{}" cy="{}" r="5" fill="{}"><title>{}</title></circle>',
        (mark(report) for report in reports),
    )
    axes = format_html(
        '<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#999"/>'
        '<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#999"/>'
        '<text x="{label}" y="{top_text}" text-anchor="end" font-size="11">{high}</text>'
        '<text x="{label}" y="{bottom}" text-anchor="end" font-size="11">{low}</text>'
        '<text x="{left}" y="{date_y}" font-size="11">{start}</text>'
        '<text x="{right}" y="{date_y}" text-anchor="end" font-size="11">{end}</text>',
        left=LEFT,
        right=WIDTH - RIGHT,
        top=TOP,
        bottom=HEIGHT - BOTTOM,
        label=LEFT - 6,
        top_text=TOP + 10,
        date_y=HEIGHT - 8,
        high=amount_display(high, currency),
        low=amount_display(low, currency),
        start=start.isoformat(),
        end=end.isoformat(),
    )
    zero = format_html(
        '<line x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="#ccc" stroke-dasharray="4 3"/>',
        LEFT,
        WIDTH - RIGHT,
        y=f"{y(Decimal(0)):.1f}",
    )
    return format_html(
        '<svg class="balance-chart" data-currency="{}" xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" '
        'viewBox="0 0 {} {}" role="img" aria-label="{} ledger and available balance, {} to {}">{}{}{}{}</svg>',
        currency,
        WIDTH,
        HEIGHT,
        WIDTH,
        HEIGHT,
        currency,
        start.isoformat(),
        end.isoformat(),
        axes,
        zero if low < 0 < high else mark_safe(""),
        lines,
        dots,
    )
