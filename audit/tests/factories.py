"""factory-boy factories for the audit trail."""

import uuid

import factory
from factory.django import DjangoModelFactory

from amani.actors import ActorType
from audit.models import AuditRecord


class AuditRecordFactory(DjangoModelFactory):
    class Meta:
        model = AuditRecord

    action = "register_wallet"
    actor_type = ActorType.API_KEY
    actor_id = factory.Sequence(lambda n: f"key_{n}")
    user_id = factory.LazyFunction(uuid.uuid4)
    resource_type = "wallet"
    resource_id = factory.LazyFunction(lambda: str(uuid.uuid4()))
    details = factory.LazyFunction(dict)
    request_id = factory.LazyFunction(lambda: uuid.uuid4().hex)
