"""The registry of webhook providers: adding one is a module (see webhooks.providers.base) and a line here."""

from __future__ import annotations

from django.conf import settings

from webhooks.providers import fincra, flutterwave, paystack
from webhooks.providers.base import ProviderModule

PROVIDERS: dict[str, ProviderModule] = {
    module.NAME: module  # type: ignore[misc]
    for module in (
        paystack,
        flutterwave,
        fincra,
    )
}


def provider_secrets(module: ProviderModule) -> tuple[bytes, ...]:
    """The provider's current secrets (several during a rotation), as HMAC keys; empty when it is off."""
    return tuple(secret.strip().encode() for secret in getattr(settings, module.SECRET_SETTING, ()) if secret.strip())


def provider_enabled(name: str) -> ProviderModule | None:
    """The provider's module when it is registered and has a secret; None means 404."""
    module = PROVIDERS.get(name)
    return module if module is not None and provider_secrets(module) else None
