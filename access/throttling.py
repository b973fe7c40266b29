"""Per-API-key throttling on the shared cache (API.md: 429 `throttled` with `Retry-After`)."""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.core.cache import cache as default_cache
from django.core.cache.backends.locmem import LocMemCache
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

logger = logging.getLogger("amani.throttling")


class _WindowCounts:
    """Counts of the current window in this process: what a local-memory cache would hold, cheaper.

    LocMemCache is per process anyway, and its add/incr pickle the value and take a lock
    each (0.11 ms a request with DRF's machinery, PROFILE.md). A new window starts afresh.
    """

    def __init__(self) -> None:
        self.window: float | None = None
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()

    def increment(self, key: str, window: float) -> int:
        with self.lock:
            if window != self.window:
                self.window, self.counts = window, {}
            count = self.counts[key] = self.counts.get(key, 0) + 1
            return count


_local_counts = _WindowCounts()


class ApiKeyRateThrottle(SimpleRateThrottle):
    """A fixed-window counter per key id, incremented atomically in the cache.

    DRF's SimpleRateThrottle keeps a list of every request's timestamp per key and
    writes it back with get/set: at 50,000 requests a minute that list is huge and
    concurrent workers overwrite each other's appends. `cache.incr` is atomic in
    Redis (and in local memory within one process), so every worker sharing the
    cache counts into the same number. A cache outage fails open: the shared cache
    may be configured but is never required (API.md).
    """

    scope = "api_key"
    cache = default_cache
    _last_warning = 0.0

    def get_rate(self) -> str | None:
        # Read per instance, so the rate follows the settings (and test overrides).
        rate = settings.API_THROTTLE_RATE
        return None if not rate or rate.lower() == "off" else rate

    def get_cache_key(self, request: Request, view: object) -> str | None:
        key = getattr(request, "auth", None)
        key_id = getattr(key, "key_id", None)
        if not key_id:
            return None  # unauthenticated requests fail before throttling matters
        return self.cache_format % {"scope": self.scope, "ident": key_id}

    def allow_request(self, request: Request, view: object) -> bool:
        if self.rate is None:
            return True
        base_key = self.get_cache_key(request, view)
        if base_key is None:
            return True
        now = self.timer()
        window_start = int(now // self.duration) * self.duration
        self.wait_seconds = window_start + self.duration - now
        key = f"{base_key}:{window_start}"
        if isinstance(self.cache, LocMemCache):  # no cache shared between workers: count here
            return _local_counts.increment(key, window_start) <= self.num_requests
        try:
            self.cache.add(key, 0, timeout=self.duration + 5)
            count = self.cache.incr(key)
        except ValueError:  # evicted between add and incr
            self.cache.set(key, 1, timeout=self.duration + 5)
            count = 1
        except Exception as exc:  # the cache is down: serve rather than refuse
            if now - ApiKeyRateThrottle._last_warning > 60:  # once a minute per process, not per request
                ApiKeyRateThrottle._last_warning = now
                logger.warning("throttle cache unavailable, requests are not throttled: %r", exc)
            return True
        return count <= self.num_requests

    def wait(self) -> float:
        return max(self.wait_seconds, 0.001)
