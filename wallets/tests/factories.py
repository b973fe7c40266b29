"""factory-boy factories for the wallet registry, and the registration body the API takes."""

import uuid
from typing import Any

import factory
from factory.django import DjangoModelFactory

from wallets.models import Provider, Wallet


class WalletFactory(DjangoModelFactory):
    class Meta:
        model = Wallet

    user_id = factory.LazyFunction(uuid.uuid4)
    provider = Provider.FINCRA
    provider_account_id = factory.Sequence(lambda n: f"fincra_wallet_{n}")
    provider_customer_id = factory.Sequence(lambda n: f"customer_{n}")
    metadata = factory.LazyFunction(lambda: {"kyc_verified": True})
    is_active = True


def wallet_body(**overrides: Any) -> dict[str, Any]:
    """A valid registration body (API.md's example) for a new user and account; override any field,
    or drop it with the value `...` (None is a value a test may send)."""
    body: dict[str, Any] = {
        "user_id": str(uuid.uuid4()),
        "provider": "fincra",
        "provider_account_id": f"fincra_wallet_{uuid.uuid4().hex}",
        "provider_customer_id": "customer_456",
        "metadata": {"kyc_verified": True},
    }
    body.update(overrides)
    return {name: value for name, value in body.items() if value is not ...}
