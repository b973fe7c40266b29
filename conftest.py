"""Shared fixtures: API clients with keys, a test client that signs its requests, and a thread race."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from itertools import count
from typing import Any

import pytest
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.test import Client, TransactionTestCase

from access.authentication import HmacAuthentication
from access.models import Scope
from access.services import IssuedKey, api_client_create
from amani import signing
from amani.tests import roles

ALL_SCOPES = list(Scope.values)
_names = count(1)


def race(racers: int, work: Callable[[int], Any]) -> list[Any]:
    """Run work(i) in `racers` threads released together; each one's result (or exception), in order.

    Each thread has its own database connection (Django's are per thread), closed at its end.
    """
    barrier = threading.Barrier(racers)
    results: list[Any] = [None] * racers

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as exc:  # reported by the callers' assertions
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.fixture(autouse=True)
def _no_nonce_housekeeping(monkeypatch):
    """No once-a-minute nonce pruning on the request path (a test of it sets `_next_prune` back).

    It adds a DELETE to whichever request crosses the minute, so on a busy machine any
    statement count could be off by one (CI: a statement page counted 10 instead of 9).
    """
    monkeypatch.setattr(HmacAuthentication, "_next_prune", float("inf"))


@pytest.fixture
def make_api_key(db):
    """Create an API client with the given scopes; returns its issued key (with secret)."""

    def make(scopes: list[str] | None = None, name: str | None = None) -> IssuedKey:
        _, issued = api_client_create(name=name or f"client-{next(_names)}", scopes=scopes or ALL_SCOPES)
        return issued

    return make


class SignedClient:
    """Django's test client, signing every request with the contract's scheme."""

    def __init__(self, key_id: str, secret: str, client: Client | None = None) -> None:
        self.key_id = key_id
        self.secret = secret
        self.client = client or Client()

    def request(
        self,
        method: str,
        url: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        sign: bool = True,
    ):
        path, _, query = url.partition("?")
        if body is None:
            raw = b""
        elif isinstance(body, bytes):
            raw = body
        elif isinstance(body, str):
            raw = body.encode()
        else:
            raw = json.dumps(body).encode()
        headers = dict(headers or {})
        if sign:
            headers["Authorization"] = signing.authorization_header(
                key_id=self.key_id, secret=self.secret, method=method, path=path, query=query, body=raw
            )
        kwargs: dict[str, Any] = {"headers": headers}
        if raw or method in ("POST", "PUT", "PATCH"):
            kwargs["data"] = raw
            kwargs["content_type"] = content_type
        return self.client.generic(method, url, **kwargs)

    def get(self, url: str, **kwargs: Any):
        return self.request("GET", url, **kwargs)

    def post(self, url: str, body: Any = None, **kwargs: Any):
        return self.request("POST", url, body, **kwargs)


@pytest.fixture
def signed_client(make_api_key) -> SignedClient:
    """A client holding every scope."""
    issued = make_api_key()
    return SignedClient(issued.key_id, issued.secret)


@pytest.fixture
def signed_client_for(make_api_key):
    """Factory: a signed client holding only the given scopes."""

    def make(scopes: list[str]) -> SignedClient:
        issued = make_api_key(scopes)
        return SignedClient(issued.key_id, issued.secret)

    return make


# --- the service's database role (amani.tests.roles) ---------------------------------------------


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Migrated as the owner; from here on every connection is the service's role."""
    settings_dict = connections.settings[DEFAULT_DB_ALIAS]
    owner, role = settings_dict["USER"], roles.app_role_name(settings_dict["NAME"])
    with django_db_blocker.unblock():
        call_command("create_app_role", role, stdout=io.StringIO())
        with connection.cursor() as cursor:
            cursor.execute(roles.ANALYZE_FUNCTION)
            cursor.execute(f"GRANT EXECUTE ON FUNCTION test_analyze(regclass) TO {connection.ops.quote_name(role)}")
    roles.app_role_start(owner=owner, role=role)
    yield
    roles.app_role_stop()
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        # The database is dropped next; its grants go with the role (roles are per server).
        cursor.execute(f"DROP OWNED BY {connection.ops.quote_name(role)}")
        cursor.execute(f"DROP ROLE {connection.ops.quote_name(role)}")


_flush_after_transactional_test = TransactionTestCase._fixture_teardown


def _flush_as_owner(self: TransactionTestCase) -> None:
    """Emptying the tables after a transactional test is TRUNCATE, which the role must not hold."""
    with roles.database_owner():
        _flush_after_transactional_test(self)


TransactionTestCase._fixture_teardown = _flush_as_owner
