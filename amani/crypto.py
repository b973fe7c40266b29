"""Fernet keys derived per purpose, so one leaked token type never opens another."""

import base64
import hashlib
from functools import cache

from cryptography.fernet import Fernet
from django.conf import settings


@cache
def fernet(purpose: str) -> Fernet:
    """Fernet for `purpose`; API secrets may use an explicitly configured key."""
    if purpose == "api-secret" and settings.API_SECRET_ENCRYPTION_KEY:
        return Fernet(settings.API_SECRET_ENCRYPTION_KEY)
    digest = hashlib.sha256(f"amani:{purpose}:".encode() + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))
