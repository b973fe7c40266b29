"""Services for API clients and keys: creation, rotation, revocation, nonce store."""

from __future__ import annotations

import enum
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from access.models import ApiClient, ApiKey, ApiNonce, Scope
from access.queries import api_key_row, nonce_insert_if_usable
from amani.actors import Actor
from amani.crypto import fernet
from audit.models import AuditAction, AuditResource
from audit.services import audit_record


def secret_encrypt(secret: str) -> str:
    return fernet("api-secret").encrypt(secret.encode()).decode()


# Only the decrypted secret is cached, per ciphertext: whether the key may still be used is
# read from the database on every request. Fernet cost 0.16 ms a request (PROFILE.md).
@lru_cache(maxsize=4096)
def secret_decrypt(token: str) -> str:
    try:
        return fernet("api-secret").decrypt(token.encode()).decode()
    except InvalidToken as exc:  # the encryption key changed: the key cannot be used
        raise ValueError("API secret cannot be decrypted with the configured key") from exc


def scopes_validate(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(Scope.values))
    if unknown or not scopes:
        raise ValidationError(
            {"scopes": [f"Choose one or more of {', '.join(Scope.values)}; unknown: {', '.join(unknown)}"]}
        )
    return sorted(set(scopes), key=Scope.values.index)


@dataclass(frozen=True)
class IssuedKey:
    """A key as handed out once: the plain secret is never stored or shown again."""

    key: ApiKey
    secret: str

    @property
    def key_id(self) -> str:
        return self.key.key_id


@transaction.atomic
def api_key_create(*, client: ApiClient, expires_at: datetime | None = None, actor: Actor | None = None) -> IssuedKey:
    """Add a signing key to a client; several may be active at once (rotation)."""
    secret = secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        client=client,
        key_id="ak_" + secrets.token_hex(12),
        secret_encrypted=secret_encrypt(secret),
        expires_at=expires_at,
    )
    audit_record(
        action=AuditAction.CREATE_API_KEY,
        actor=actor or Actor.system(),
        resource_type=AuditResource.API_KEY,
        resource_id=key.key_id,
        details={"client": client.name, "expires_at": expires_at.isoformat() if expires_at else None},
    )
    return IssuedKey(key=key, secret=secret)


@transaction.atomic
def api_client_create(*, name: str, scopes: list[str], actor: Actor | None = None) -> tuple[ApiClient, IssuedKey]:
    """Create a client with one active key."""
    scopes = scopes_validate(scopes)
    name = name.strip()
    if not name or len(name) > ApiClient._meta.get_field("name").max_length:
        raise ValidationError({"name": ["A client name is 1-100 characters."]})
    if ApiClient.objects.filter(name=name).exists():
        raise ValidationError({"name": [f"A client named {name!r} already exists."]})
    client = ApiClient.objects.create(name=name, scopes=scopes)
    audit_record(
        action=AuditAction.CREATE_API_CLIENT,
        actor=actor or Actor.system(),
        resource_type=AuditResource.API_CLIENT,
        resource_id=str(client.pk),
        details={"name": name, "scopes": scopes},
    )
    return client, api_key_create(client=client, actor=actor)


@transaction.atomic
def api_key_revoke(*, key: ApiKey, actor: Actor | None = None) -> ApiKey:
    """Revoke a key at once; requests signed with it get `401 revoked_key`."""
    now = timezone.now()
    # Conditional UPDATE: of two racing revocations only one records the time and the audit row.
    if ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=now):
        key.revoked_at = now
        audit_record(
            action=AuditAction.REVOKE_API_KEY,
            actor=actor or Actor.system(),
            resource_type=AuditResource.API_KEY,
            resource_id=key.key_id,
            details={"client": key.client.name},
        )
    else:
        key.refresh_from_db(fields=["revoked_at"])
    return key


@transaction.atomic
def api_client_update(
    *, client: ApiClient, scopes: list[str], is_active: bool, actor: Actor | None = None
) -> ApiClient:
    """Change a client's scopes or switch it off; an inactive client's keys all get `401 revoked_key`."""
    scopes = scopes_validate(scopes)
    before = ApiClient.objects.select_for_update().values("scopes", "is_active").get(pk=client.pk)
    client.scopes = scopes
    client.is_active = is_active
    client.save(update_fields=["scopes", "is_active"])
    after = {"scopes": scopes, "is_active": is_active}
    if before != after:
        audit_record(
            action=AuditAction.UPDATE_API_CLIENT,
            actor=actor or Actor.system(),
            resource_type=AuditResource.API_CLIENT,
            resource_id=str(client.pk),
            details={"name": client.name, "before": before, "after": after},
        )
    return client


@transaction.atomic
def api_key_expire(*, key: ApiKey, expires_at: datetime | None, actor: Actor | None = None) -> ApiKey:
    """Set (or clear) the time after which a key gets `401 revoked_key`."""
    before = ApiKey.objects.select_for_update().values_list("expires_at", flat=True).get(pk=key.pk)
    key.expires_at = expires_at
    key.save(update_fields=["expires_at"])
    if before != expires_at:
        audit_record(
            action=AuditAction.EXPIRE_API_KEY,
            actor=actor or Actor.system(),
            resource_type=AuditResource.API_KEY,
            resource_id=key.key_id,
            details={
                "client": key.client.name,
                "before": before.isoformat() if before else None,
                "expires_at": expires_at.isoformat() if expires_at else None,
            },
        )
    return key


@dataclass(frozen=True, slots=True)
class KeyLookup:
    """What authenticating a request needs of its key, read from the database on every request."""

    key_id: str
    secret_encrypted: str
    scopes: list[str]
    usable: bool  # not revoked, not expired, its client active (at the time given to api_key_lookup)


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated principal of a signed request: DRF's request.user and request.auth."""

    key_id: str
    scopes: frozenset[str]
    is_authenticated = True


def api_key_lookup(*, key_id: str, now: datetime) -> KeyLookup | None:
    """The key with its client's scopes and whether it may sign at `now`; None for an unknown key id.

    Read from the database on every request, so a revocation, an expiry or a client
    switched off is refused by every process at once (API.md, revoke_api_key); only the
    decryption of the secret is cached (secret_decrypt). One prepared statement: it runs
    first on every signed request, on a connection that may have died while idle.
    """
    row = api_key_row(key_id=key_id, now=now)
    if row is None:
        return None
    secret_encrypted, scopes, usable = row
    return KeyLookup(key_id=key_id, secret_encrypted=secret_encrypted, scopes=json.loads(scopes), usable=usable)


class NonceOutcome(enum.Enum):
    RECORDED = "recorded"
    REPLAYED = "replayed"
    REVOKED = "revoked"  # the key was revoked (or expired, or its client switched off) since it was read


def nonce_record(*, key_id: str, nonce: str, now: datetime) -> NonceOutcome:
    """Record a nonce of a usable key, in one prepared statement; REPLAYED when this key already used it.

    The same statement checks again that the key is usable (REVOKED otherwise: a
    revocation that committed after the key was read is refused all the same, and no
    nonce is spent) and touches last_used_at at most once a minute. The unique
    constraint on (key_id, nonce) decides across every server process.

    Outside a transaction the statement commits asynchronously: `set_config(…, true)`
    inside the statement sets synchronous_commit off for its own transaction only
    (PgBouncer transaction pooling is fine). The row is visible to every other session
    at once, so replays are still refused across processes; only its durability trails
    by at most 3 x wal_writer_delay (600 ms by default). A PostgreSQL crash inside that
    window forgets those nonces, and a captured request could then be replayed once
    within the timestamp window; the writes it could repeat are idempotent (dedup keys)
    except a provider balance report, which would be stored twice with the same content.
    Waiting for a WAL flush here cost a whole fsync per request (docs/benchmarks.md).
    Inside a caller's transaction the setting would outlive this statement, so there the
    commit stays synchronous.
    """
    synchronous_commit = "on" if connection.in_atomic_block else "off"
    usable, recorded = nonce_insert_if_usable(
        key_id=key_id, nonce=nonce, now=now, synchronous_commit=synchronous_commit
    )
    if not usable:
        return NonceOutcome.REVOKED
    return NonceOutcome.RECORDED if recorded else NonceOutcome.REPLAYED


def nonce_prune(*, now: datetime | None = None) -> int:
    """Delete nonces older than twice the skew window; older ones can never be replayed."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=2 * settings.HMAC_CLOCK_SKEW_SECONDS)
    deleted, _ = ApiNonce.objects.filter(seen_at__lt=cutoff).delete()
    return deleted
