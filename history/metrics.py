"""The history's gauges, read from the database when /metrics is scraped.

Seal lag is a fact about the database, not about a process: every gunicorn worker
answers the same, and it keeps growing when the sealer has stopped (which a gauge set by
the sealer itself could not show).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.db import DatabaseError
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from amani.metrics import scrape_time
from history.selectors import seal_lag

logger = logging.getLogger("history.metrics")

LAG = "amani_history_seal_lag_seconds"
UNSEALED = "amani_history_unsealed_records"


def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
    return (
        GaugeMetricFamily(LAG, "Seconds since the oldest committed event or audit record not yet sealed was written."),
        GaugeMetricFamily(UNSEALED, "Committed events and audit records not yet sealed into a block."),
    )


class SealLagCollector(Collector):
    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield from _families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            lag = seal_lag()
        except DatabaseError:
            logger.warning("seal lag unavailable: the database did not answer", exc_info=True)
            return
        lag_family, unsealed_family = _families()
        lag_family.add_metric([], lag.seconds)
        unsealed_family.add_metric([], lag.unsealed)
        yield lag_family
        yield unsealed_family


# Once per process: a module is imported once (history.apps imports it when Django starts).
scrape_time.register(SealLagCollector())
