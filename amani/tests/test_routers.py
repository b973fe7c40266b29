"""The replica router: listing and balance reads go to "replica" only inside the context."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.db import DEFAULT_DB_ALIAS, connections, router, transaction
from django.test.utils import CaptureQueriesContext, override_settings

from amani.routers import REPLICA, reading_from_replica
from wallets.models import Wallet
from wallets.tests.factories import WalletFactory

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module", autouse=True)
def _replica_settings(django_db_setup):
    """A second alias on the same test database, as a streaming replica would be.

    Added before each test's case class is built, so tests may list it in `databases`.
    """
    connections.settings[REPLICA] = {**connections[DEFAULT_DB_ALIAS].settings_dict, "TEST": {"MIRROR": "default"}}
    yield
    connections[REPLICA].close()
    del connections[REPLICA]
    del connections.settings[REPLICA]


@pytest.fixture
def replica_alias():
    with override_settings(DATABASE_ROUTERS=["amani.routers.ReplicaRouter"]):
        yield connections[REPLICA]


both_aliases = pytest.mark.django_db(transaction=True, databases=[DEFAULT_DB_ALIAS, REPLICA])


@both_aliases
def test_reads_go_to_replica_only_inside_the_context(replica_alias):
    wallet = WalletFactory()
    assert router.db_for_read(Wallet) == DEFAULT_DB_ALIAS
    with reading_from_replica():
        assert router.db_for_read(Wallet) == REPLICA
        with CaptureQueriesContext(replica_alias) as on_replica:
            found = Wallet.objects.get(pk=wallet.pk)
    assert found.public_id == wallet.public_id
    assert found._state.db == REPLICA
    assert len(on_replica.captured_queries) == 1
    with CaptureQueriesContext(replica_alias) as outside:
        Wallet.objects.get(pk=wallet.pk)
    assert outside.captured_queries == []


@both_aliases
def test_writes_stay_on_default_inside_the_context(replica_alias):
    with reading_from_replica():
        assert router.db_for_write(Wallet) == DEFAULT_DB_ALIAS
        with CaptureQueriesContext(replica_alias) as on_replica:
            wallet = WalletFactory()
    assert wallet._state.db == DEFAULT_DB_ALIAS
    assert on_replica.captured_queries == []


@both_aliases
def test_reads_inside_a_primary_transaction_stay_on_default(replica_alias):
    with reading_from_replica(), transaction.atomic():
        wallet = WalletFactory()
        assert router.db_for_read(Wallet) == DEFAULT_DB_ALIAS
        assert Wallet.objects.get(pk=wallet.pk)._state.db == DEFAULT_DB_ALIAS


@both_aliases
def test_decorator_form_and_reset_after_an_exception(replica_alias):
    @reading_from_replica()
    def routed() -> str:
        return router.db_for_read(Wallet)

    assert routed() == REPLICA
    with pytest.raises(RuntimeError), reading_from_replica():
        raise RuntimeError("boom")
    assert router.db_for_read(Wallet) == DEFAULT_DB_ALIAS


@both_aliases
def test_context_does_not_leak_into_other_threads(replica_alias):
    seen: list[str] = []

    def other_thread() -> None:
        seen.append(router.db_for_read(Wallet))

    with reading_from_replica():
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert seen == [DEFAULT_DB_ALIAS]


@both_aliases
def test_listing_and_balance_views_read_from_the_replica(replica_alias, signed_client):
    wallet = WalletFactory()
    with (
        CaptureQueriesContext(replica_alias) as on_replica,
        CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]) as on_default,
    ):
        listing = signed_client.get(f"/api/v1/wallets/{wallet.public_id}/events")
        balance = signed_client.get(f"/api/v1/wallets/{wallet.public_id}/balance")
        reconciliation = signed_client.get(f"/api/v1/wallets/{wallet.public_id}/reconciliation?currency=NGN")
    assert reconciliation.status_code == 404, reconciliation.content
    assert listing.status_code == 200, listing.content
    assert listing.json() == {"results": [], "next_cursor": None}
    assert balance.status_code == 200, balance.content
    replica_sql = " ".join(query["sql"] for query in on_replica.captured_queries)
    default_sql = " ".join(query["sql"] for query in on_default.captured_queries)
    assert "events_walletevent" in replica_sql
    assert "events_providerbalancereport" in replica_sql
    assert "events_walletevent" not in default_sql
    assert "events_providerbalancereport" not in default_sql
    # Whether the wallet exists is read-your-writes: decided on the primary.
    assert 'FROM "wallets_wallet" WHERE "public_id"' in default_sql
    assert 'FROM "wallets_wallet" WHERE "public_id"' not in replica_sql
    # Authentication (key lookup, nonce) stays on the primary.
    assert "amani_apinonce" in default_sql
    assert "amani_apinonce" not in replica_sql


@pytest.mark.django_db
def test_without_a_replica_alias_reads_stay_on_default():
    replica = connections.settings.pop(REPLICA)
    try:
        with override_settings(DATABASE_ROUTERS=["amani.routers.ReplicaRouter"]), reading_from_replica():
            assert router.db_for_read(Wallet) == DEFAULT_DB_ALIAS
    finally:
        connections.settings[REPLICA] = replica


def test_migrations_never_target_the_replica():
    from amani.routers import ReplicaRouter

    assert ReplicaRouter().allow_migrate(REPLICA, "events") is False
    assert ReplicaRouter().allow_migrate(DEFAULT_DB_ALIAS, "events") is True


@pytest.mark.parametrize("replica_url", ["", "postgres://reader@replica.internal:5432/amani"])
def test_database_replica_url_setting(replica_url):
    code = (
        "import json; from django.conf import settings; "
        "print(json.dumps({'aliases': sorted(settings.DATABASES), "
        "'routers': getattr(settings, 'DATABASE_ROUTERS', []), "
        "'host': settings.DATABASES.get('replica', {}).get('HOST')}))"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "amani.settings.base",
        "DATABASE_URL": "postgres://writer@primary.internal:5432/amani",
        "DATABASE_REPLICA_URL": replica_url,
        "SECRET_KEY": "x" * 50,
        "DEBUG": "false",
    }
    output = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = json.loads(output)
    if replica_url:
        assert found["aliases"] == ["default", "replica"]
        assert found["routers"] == ["amani.routers.ReplicaRouter"]
        assert found["host"] == "replica.internal"
    else:
        assert found == {"aliases": ["default"], "routers": [], "host": None}
