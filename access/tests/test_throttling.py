"""Per-API-key throttling: 429 `throttled` with Retry-After, counted on a cache every worker shares."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
import redis
import requests
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from django.db import connection
from django.test import override_settings

from access.services import api_client_create
from access.throttling import ApiKeyRateThrottle
from amani.signing import HmacAuth
from testing.servers import gunicorn_server, workers_that_served

REDIS_URL = "redis://127.0.0.1:6379/15"
NOW = 1_800_000_010.0  # 10 s into a minute window


@pytest.fixture
def frozen_clock(monkeypatch):
    """Keep every request of a test inside one window, whatever the wall clock does."""
    monkeypatch.setattr(ApiKeyRateThrottle, "timer", staticmethod(lambda: NOW))


@pytest.fixture
def redis_cache_settings():
    """The default cache on Redis, under a prefix of this test's own."""
    prefix = f"test-throttle-{uuid.uuid4().hex}"
    with override_settings(
        CACHES={
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": REDIS_URL,
                "KEY_PREFIX": prefix,
            }
        }
    ):
        yield prefix


def request_for(key_id: str) -> SimpleNamespace:
    return SimpleNamespace(auth=SimpleNamespace(key_id=key_id))


def throttle_with(cache) -> ApiKeyRateThrottle:
    throttle = ApiKeyRateThrottle()
    throttle.cache = cache
    return throttle


def test_default_rate_lets_a_key_make_50000_requests_a_minute(frozen_clock):
    num, duration = ApiKeyRateThrottle().parse_rate(settings.API_THROTTLE_RATE)
    assert num * 60 / duration >= 50_000
    cache = LocMemCache(f"throttle-{uuid.uuid4().hex}", {})
    throttle = throttle_with(cache)
    request = request_for("burst-key")
    allowed = sum(throttle.allow_request(request, None) for _ in range(50_000))
    assert allowed == 50_000


@override_settings(API_THROTTLE_RATE="5/min")
def test_over_the_rate_is_429_throttled_with_retry_after(signed_client_for, frozen_clock):
    caches["default"].clear()
    limited = signed_client_for(["wallets:read"])
    other = signed_client_for(["wallets:read"])
    statuses = [limited.get("/api/v1/wallets").status_code for _ in range(8)]
    assert statuses == [200] * 5 + [429] * 3
    response = limited.get("/api/v1/wallets")
    assert response.status_code == 429
    assert response.json() == {"error": {"code": "throttled", "message": response.json()["error"]["message"]}}
    assert response["Retry-After"] == "50"  # the window ends 50 s after NOW
    # The limit is per key: another key of the same service is not affected.
    assert other.get("/api/v1/wallets").status_code == 200


@override_settings(API_THROTTLE_RATE="off")
def test_rate_off_disables_throttling(signed_client_for, frozen_clock):
    client = signed_client_for(["wallets:read"])
    assert all(client.get("/api/v1/wallets").status_code == 200 for _ in range(20))


@override_settings(API_THROTTLE_RATE="6/min")
def test_counts_are_shared_by_two_redis_clients(frozen_clock):
    """Two workers are two cache clients (two connection pools) on one Redis: one count."""
    prefix = f"test-throttle-{uuid.uuid4().hex}"
    worker_a = throttle_with(RedisCache(REDIS_URL, {"KEY_PREFIX": prefix}))
    worker_b = throttle_with(RedisCache(REDIS_URL, {"KEY_PREFIX": prefix}))
    assert worker_a.cache._cache._get_connection_pool(True) is not worker_b.cache._cache._get_connection_pool(True)
    request = request_for("shared-key")
    decisions = [(worker_a if i % 2 else worker_b).allow_request(request, None) for i in range(9)]
    assert decisions == [True] * 6 + [False] * 3
    assert worker_b.wait() == 50


@override_settings(API_THROTTLE_RATE="3/min")
def test_api_requests_through_redis_are_throttled(signed_client_for, redis_cache_settings, frozen_clock):
    client = signed_client_for(["wallets:read"])
    statuses = [client.get("/api/v1/wallets").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    keys = redis.Redis.from_url(REDIS_URL).keys(f"{redis_cache_settings}:*")
    assert len(keys) == 1  # one counter for the key, in the shared cache


@override_settings(
    API_THROTTLE_RATE="1/min",
    CACHES={
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    },
)
def test_an_unreachable_cache_fails_open(signed_client_for, frozen_clock, monkeypatch, caplog):
    monkeypatch.setattr(ApiKeyRateThrottle, "_last_warning", 0.0)
    client = signed_client_for(["wallets:read"])
    assert [client.get("/api/v1/wallets").status_code for _ in range(3)] == [200, 200, 200]
    warnings = [r for r in caplog.records if r.name == "amani.throttling"]
    assert len(warnings) == 1  # once a minute, not once a request
    assert "not throttled" in warnings[0].getMessage()


@pytest.mark.django_db(transaction=True)
def test_gunicorn_workers_share_one_count_through_redis(tmp_path):
    """Two gunicorn workers, CACHE_URL on Redis, 10 requests a minute: requests go on until
    both workers have answered some (a condition, not a count: on a busy machine one worker
    may take many in a row), and exactly 10 of them pass, whichever worker answers."""
    _, issued = api_client_create(name="throttled-client", scopes=["wallets:read"])
    auth = HmacAuth(issued.key_id, issued.secret)
    cache_db = f"redis://127.0.0.1:6379/14?key_prefix=gthrottle{uuid.uuid4().hex}"
    connection.close()
    # One thread per worker: while one worker is busy, new connections go to the other.
    with gunicorn_server(
        workers=2, metrics_dir=tmp_path / "m", CACHE_URL=cache_db, API_THROTTLE_RATE="10/min", GUNICORN_THREADS="1"
    ) as base:
        if time.time() % 60 > 40:  # keep all requests inside one minute window
            time.sleep(61 - time.time() % 60)
        window_ends = time.time() - time.time() % 60 + 60

        def call(_: int) -> requests.Response:
            return requests.get(f"{base}/api/v1/wallets", auth=auth, timeout=30, headers={"Connection": "close"})

        responses: list[requests.Response] = []
        with ThreadPoolExecutor(max_workers=8) as pool:  # concurrent: a busy worker leaves work to the other
            while len(responses) < 16 or workers_that_served(tmp_path / "m", "/api/v1/wallets") < 2:
                assert time.time() < window_ends, "the requests did not reach both workers within the minute"
                responses += pool.map(call, range(8))
    assert sorted(r.status_code for r in responses) == [200] * 10 + [429] * (len(responses) - 10)
    refused = [r for r in responses if r.status_code == 429]
    assert all(r.json()["error"]["code"] == "throttled" and int(r.headers["Retry-After"]) >= 1 for r in refused)
