"""Shared fixtures: API clients with keys, signed test clients, the service's database role, one wallet,
and the live server of the HTTP contract tests. Importable helpers live in the `testing` package."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import Iterator
from itertools import count
from typing import Any

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.test import TransactionTestCase

from access.authentication import HmacAuthentication
from access.models import ApiKey, Scope
from access.services import IssuedKey, api_client_create, api_key_create, api_key_revoke
from testing import roles
from testing.clients import SignedClient
from testing.contract import SCOPE_SETS, Api, Creds
from testing.servers import gunicorn_server
from wallets.models import Wallet
from wallets.tests.factories import WalletFactory

ALL_SCOPES = list(Scope.values)
_names = count(1)


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


@pytest.fixture
def wallet(db) -> Wallet:
    """A fincra wallet with WalletFactory's defaults; a module that needs history records it on this one."""
    return WalletFactory()


# --- the service's database role (testing.roles) ---------------------------------------------


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


# --- the live server of the HTTP contract tests (testing.contract) -----------------------------


@pytest.fixture(scope="module")
def base_url(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[str]:
    """gunicorn serving the test database in production mode, as `make run` would: one per module."""
    try:
        with gunicorn_server(workers=4, metrics_dir=tmp_path_factory.mktemp("gunicorn") / "prometheus") as base:
            yield base
    finally:
        with django_db_blocker.unblock(), roles.database_owner(), connection.cursor() as cursor:
            tables = [
                model._meta.db_table
                for label in ("amani", "wallets", "events", "audit")
                for model in apps.get_app_config(label).get_models()
                if model._meta.managed
            ]
            cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")


@pytest.fixture(scope="module")
def keys(base_url, django_db_blocker) -> dict[Any, Creds]:
    """Keys committed before any test of the module: "all", each of SCOPE_SETS, "revoked", "expired",
    "rotation" (two active keys of one client)."""

    def issue(scopes: list[str]) -> tuple[Any, Creds]:
        client, issued = api_client_create(name=f"contract-{uuid.uuid4().hex[:12]}", scopes=scopes)
        return client, Creds(issued.key_id, issued.secret)

    made: dict[Any, Any] = {}
    with django_db_blocker.unblock():
        made["all"] = issue(ALL_SCOPES)[1]
        for scopes in SCOPE_SETS:
            made[scopes] = issue(list(scopes))[1]
        made["revoked"] = issue(ALL_SCOPES)[1]
        api_key_revoke(key=ApiKey.objects.get(key_id=made["revoked"].key_id))
        client, first = issue(["wallets:read"])
        second = api_key_create(client=client)
        made["rotation"] = (first, Creds(second.key_id, second.secret))
        expired = api_key_create(client=client, expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        made["expired"] = Creds(expired.key_id, expired.secret)
    return made


@pytest.fixture(scope="module")
def key(keys) -> Creds:
    return keys["all"]


@pytest.fixture(scope="module")
def api(base_url, key) -> Api:
    return Api(base_url, key)
