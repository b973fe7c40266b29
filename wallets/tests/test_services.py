"""wallet_register decides as the contract's table; status changes are audited once."""

import uuid

import pytest
from django.core.exceptions import ValidationError

from amani.actors import Actor
from amani.api.errors import domain_error_status
from audit.models import AuditRecord
from wallets.models import Provider, Wallet
from wallets.services import (
    IdempotencyKeyReused,
    WalletClaimed,
    wallet_deactivate,
    wallet_reactivate,
    wallet_register,
)
from wallets.tests.factories import WalletFactory

pytestmark = pytest.mark.django_db

ACTOR = Actor.api_key("key_test", "req-1")


def register(**overrides):
    fields = {
        "user_id": uuid.UUID("6f1c1a52-8d3e-4c1e-9a57-1b2f3c4d5e6f"),
        "provider": Provider.FINCRA,
        "provider_account_id": "fincra_wallet_123",
        "actor": ACTOR,
    }
    fields.update(overrides)
    return wallet_register(**fields)


def test_new_wallet_is_created_with_every_field():
    registration = register(provider_customer_id="customer_456", metadata={"kyc_verified": True}, idempotency_key="k1")
    wallet = registration.wallet
    assert registration.created is True
    wallet.refresh_from_db()
    assert wallet.provider_customer_id == "customer_456"
    assert wallet.metadata == {"kyc_verified": True}
    assert wallet.idempotency_key == "k1"
    assert wallet.is_active is True


def test_registration_writes_the_runbook_audit_record():
    wallet = register(idempotency_key="k1").wallet
    record = AuditRecord.objects.get()
    assert record.action == "register_wallet"
    assert record.resource_type == "wallet"
    assert record.resource_id == str(wallet.public_id)
    assert record.user_id == wallet.user_id
    assert record.actor_type == "api_key"
    assert record.actor_id == "key_test"
    assert record.request_id == "req-1"
    assert record.details["provider"] == "fincra"
    assert record.details["provider_account_id"] == "fincra_wallet_123"
    assert record.details["idempotency_key"] == "k1"


def test_same_key_same_wallet_is_a_replay_without_audit():
    first = register(idempotency_key="k1")
    second = register(idempotency_key="k1", metadata={"changed": True})
    assert second.created is False
    assert second.wallet.pk == first.wallet.pk
    assert Wallet.objects.count() == 1
    assert AuditRecord.objects.count() == 1


def test_same_natural_key_without_key_is_a_replay():
    first = register()
    second = register()
    assert (second.created, second.wallet.pk) == (False, first.wallet.pk)
    assert AuditRecord.objects.count() == 1


def test_new_key_for_an_existing_wallet_is_a_replay_of_that_wallet():
    first = register(idempotency_key="k1")
    second = register(idempotency_key="k2")
    assert (second.created, second.wallet.pk) == (False, first.wallet.pk)
    # The new key is not stored: it never named a wallet of its own.
    assert Wallet.objects.filter(idempotency_key="k2").count() == 0


@pytest.mark.parametrize(
    "change",
    [
        {"user_id": uuid.UUID("00000000-0000-4000-8000-000000000001")},
        {"provider": Provider.PAYSTACK},
        {"provider_account_id": "fincra_wallet_999"},
    ],
)
def test_same_key_different_wallet_is_422(change):
    register(idempotency_key="k1")
    with pytest.raises(IdempotencyKeyReused) as raised:
        register(idempotency_key="k1", **change)
    assert domain_error_status(raised.value) == 422
    assert raised.value.code == "idempotency_key_reused"
    assert Wallet.objects.count() == 1
    assert AuditRecord.objects.count() == 1


def test_key_is_decided_before_the_natural_key():
    # The key names wallet A; the natural key names wallet B of the same user: the key wins (422).
    user_id = uuid.uuid4()
    register(user_id=user_id, provider_account_id="acct_a", idempotency_key="k1")
    register(user_id=user_id, provider_account_id="acct_b")
    with pytest.raises(IdempotencyKeyReused):
        register(user_id=user_id, provider_account_id="acct_b", idempotency_key="k1")


def test_account_of_another_user_is_409():
    register()
    with pytest.raises(WalletClaimed) as raised:
        register(user_id=uuid.uuid4())
    assert domain_error_status(raised.value) == 409
    assert raised.value.code == "wallet_claimed"
    with pytest.raises(WalletClaimed):
        register(user_id=uuid.uuid4(), idempotency_key="fresh-key")
    assert Wallet.objects.count() == 1


def test_same_account_id_at_another_provider_is_another_wallet():
    first = register()
    second = register(provider=Provider.PAYSTACK)
    assert second.created is True
    assert second.wallet.pk != first.wallet.pk


def test_one_user_may_hold_several_wallets():
    user_id = uuid.uuid4()
    register(user_id=user_id, provider_account_id="a")
    register(user_id=user_id, provider_account_id="b")
    assert Wallet.objects.filter(user_id=user_id).count() == 2


def test_omitted_optionals_are_null_and_empty_object():
    wallet = register().wallet
    wallet.refresh_from_db()
    assert wallet.provider_customer_id is None
    assert wallet.metadata == {}
    assert wallet.idempotency_key is None


# Counted outside a test transaction, as in production (BEGIN and COMMIT are logged too).
@pytest.mark.django_db(transaction=True)
def test_new_registration_query_count(django_assert_num_queries):
    # One autocommit statement: the candidates, the wallet and its audit record.
    with django_assert_num_queries(1):
        registration = register(idempotency_key="k1")
    assert registration.created
    assert AuditRecord.objects.filter(action="register_wallet", resource_id=str(registration.wallet.public_id)).exists()


@pytest.mark.django_db(transaction=True)
def test_replay_query_count(django_assert_max_num_queries):
    register(idempotency_key="k1")
    # The same one statement, writing nothing.
    with django_assert_max_num_queries(1):
        register(idempotency_key="k1")
    with django_assert_max_num_queries(1):
        register()


def test_deactivate_and_reactivate_are_audited_with_reason():
    wallet = WalletFactory()
    actor = Actor.staff("alice", "req-9")
    assert wallet_deactivate(wallet=wallet, reason="fraud report #12", actor=actor) is True
    assert wallet.is_active is False
    wallet.refresh_from_db()
    assert wallet.is_active is False
    assert wallet_reactivate(wallet=wallet, reason="cleared", actor=actor) is True
    wallet.refresh_from_db()
    assert wallet.is_active is True
    records = list(AuditRecord.objects.order_by("id"))
    assert [r.action for r in records] == ["deactivate_wallet", "reactivate_wallet"]
    assert records[0].details["reason"] == "fraud report #12"
    assert records[0].actor_type == "staff"
    assert records[0].actor_id == "alice"
    assert records[0].resource_id == str(wallet.public_id)
    assert records[0].user_id == wallet.user_id


def test_status_change_to_the_current_state_is_a_no_op_without_audit():
    wallet = WalletFactory(is_active=True)
    assert wallet_reactivate(wallet=wallet, reason="again", actor=ACTOR) is False
    wallet_deactivate(wallet=wallet, reason="first", actor=ACTOR)
    assert wallet_deactivate(wallet=wallet, reason="second", actor=ACTOR) is False
    assert AuditRecord.objects.count() == 1


@pytest.mark.parametrize("reason", ["", "   "])
def test_status_change_needs_a_reason(reason):
    wallet = WalletFactory()
    with pytest.raises(ValidationError):
        wallet_deactivate(wallet=wallet, reason=reason, actor=ACTOR)
    wallet.refresh_from_db()
    assert wallet.is_active is True
    assert AuditRecord.objects.count() == 0


def test_replay_of_an_inactive_wallet_returns_it_unchanged():
    wallet = register().wallet
    wallet_deactivate(wallet=wallet, reason="closed", actor=ACTOR)
    replay = register()
    assert replay.created is False
    assert replay.wallet.is_active is False


def test_user_id_given_as_text_replays_the_same_wallet():
    first = register(idempotency_key="k1")
    second = register(user_id=str(first.wallet.user_id), idempotency_key="k1")
    assert (second.created, second.wallet.pk) == (False, first.wallet.pk)
