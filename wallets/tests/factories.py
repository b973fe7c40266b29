"""factory-boy factories for the wallet registry."""

import uuid

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
