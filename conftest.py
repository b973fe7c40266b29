"""Shared fixtures: API clients with keys, signed test clients, the service's database role, one wallet,
and the live server of the HTTP contract tests. Importable helpers live in the `testing` package."""

from __future__ import annotations

import io
from itertools import count

import pytest
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.test import TransactionTestCase

from amani.authentication import HmacAuthentication
from amani.clients import IssuedKey, api_client_create
from amani.models import Scope
from testing import roles
from testing.clients import SignedClient
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
