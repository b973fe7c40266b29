"""Services for API clients and keys: creation, rotation, revocation, nonce store."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from amani.crypto import fernet
from amani.models import ApiClient, ApiKey, ApiNonce, Scope
from amani.rows import model_from_row

if TYPE_CHECKING:
    from audit.services import Actor


def secret_encrypt(secret: str) -> str:
    return fernet("api-secret").encrypt(secret.encode()).decode()


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
    from audit.services import Actor, audit_record

    secret = secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        client=client,
        key_id="ak_" + secrets.token_hex(12),
        secret_encrypted=secret_encrypt(secret),
        expires_at=expires_at,
    )
    audit_record(
        action="create_api_key",
        actor=actor or Actor.system(),
        resource_type="api_key",
        resource_id=key.key_id,
        details={"client": client.name, "expires_at": expires_at.isoformat() if expires_at else None},
    )
    return IssuedKey(key=key, secret=secret)


@transaction.atomic
def api_client_create(*, name: str, scopes: list[str], actor: Actor | None = None) -> tuple[ApiClient, IssuedKey]:
    """Create a client with one active key."""
    from audit.services import Actor, audit_record

    scopes = scopes_validate(scopes)
    name = name.strip()
    if not name or len(name) > ApiClient._meta.get_field("name").max_length:
        raise ValidationError({"name": ["A client name is 1-100 characters."]})
    if ApiClient.objects.filter(name=name).exists():
        raise ValidationError({"name": [f"A client named {name!r} already exists."]})
    client = ApiClient.objects.create(name=name, scopes=scopes)
    audit_record(
        action="create_api_client",
        actor=actor or Actor.system(),
        resource_type="api_client",
        resource_id=str(client.pk),
        details={"name": name, "scopes": scopes},
    )
    return client, api_key_create(client=client, actor=actor)


@transaction.atomic
def api_key_revoke(*, key: ApiKey, actor: Actor | None = None) -> ApiKey:
    """Revoke a key at once; requests signed with it get `401 revoked_key`."""
    from audit.services import Actor, audit_record

    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        audit_record(
            action="revoke_api_key",
            actor=actor or Actor.system(),
            resource_type="api_key",
            resource_id=key.key_id,
            details={"client": key.client.name},
        )
    return key


@transaction.atomic
def api_client_update(
    *, client: ApiClient, scopes: list[str], is_active: bool, actor: Actor | None = None
) -> ApiClient:
    """Change a client's scopes or switch it off; an inactive client's keys all get `401 revoked_key`."""
    from audit.services import Actor, audit_record

    scopes = scopes_validate(scopes)
    before = ApiClient.objects.select_for_update().values("scopes", "is_active").get(pk=client.pk)
    client.scopes = scopes
    client.is_active = is_active
    client.save(update_fields=["scopes", "is_active"])
    after = {"scopes": scopes, "is_active": is_active}
    if before != after:
        audit_record(
            action="update_api_client",
            actor=actor or Actor.system(),
            resource_type="api_client",
            resource_id=str(client.pk),
            details={"name": client.name, "before": before, "after": after},
        )
    return client


@transaction.atomic
def api_key_expire(*, key: ApiKey, expires_at: datetime | None, actor: Actor | None = None) -> ApiKey:
    """Set (or clear) the time after which a key gets `401 revoked_key`."""
    from audit.services import Actor, audit_record

    before = ApiKey.objects.select_for_update().values_list("expires_at", flat=True).get(pk=key.pk)
    key.expires_at = expires_at
    key.save(update_fields=["expires_at"])
    if before != expires_at:
        audit_record(
            action="expire_api_key",
            actor=actor or Actor.system(),
            resource_type="api_key",
            resource_id=key.key_id,
            details={
                "client": key.client.name,
                "before": before.isoformat() if before else None,
                "expires_at": expires_at.isoformat() if expires_at else None,
            },
        )
    return key


@cache
def _api_key_sql() -> str:
    key, client = ApiKey._meta, ApiClient._meta
    columns = [f'k."{field.column}"' for field in key.concrete_fields]
    columns += [f'c."{field.column}"' for field in client.concrete_fields]
    return (
        f'SELECT {", ".join(columns)} FROM "{key.db_table}" k JOIN "{client.db_table}" c '  # noqa: S608 (names only)
        f'ON c."{client.pk.column}" = k."{key.get_field("client").column}" WHERE k."key_id" = %s'
    )


def api_key_get(*, key_id: str) -> ApiKey | None:
    """The key with its client, in one query.

    Hand-written SQL because it runs on every signed request: building the equivalent
    ORM query (select_related + first) cost more CPU than PostgreSQL spent answering it
    (docs/benchmarks.md). The instances are ordinary model instances.
    """
    with connection.cursor() as cursor:
        cursor.execute(_api_key_sql(), [key_id])
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(ApiKey._meta.concrete_fields)
    key = model_from_row(ApiKey, row[:split], connection)
    key.client = model_from_row(ApiClient, row[split:], connection)
    return key


# Touch last_used_at at most once a minute per key: a write on every request would
# cost a row lock and WAL per call for a value read only by people.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def api_key_touch(*, key: ApiKey, now: datetime) -> None:
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now


def nonce_record(*, key_id: str, nonce: str, now: datetime) -> bool:
    """Record a nonce; False when this key already used it (a replay).

    One INSERT … ON CONFLICT DO NOTHING in its own autocommit statement: the unique
    constraint decides across every server process, and no savepoint is needed.

    Outside a transaction the statement commits asynchronously (`SET LOCAL
    synchronous_commit TO off`, sent in the same round trip, scoped to this one
    statement's transaction, so PgBouncer transaction pooling is fine). The row is
    visible to every other session at once, so replays are still refused across
    processes; only its durability trails by at most 3 x wal_writer_delay (600 ms by
    default). A PostgreSQL crash inside that window forgets those nonces, and a
    captured request could then be replayed once within the timestamp window; the
    writes it could repeat are idempotent (dedup keys) except a provider balance report,
    which would be stored twice with the same content. Waiting for a WAL flush here cost
    a whole fsync per request (docs/benchmarks.md).
    """
    table = ApiNonce._meta.db_table
    sql = (
        f"INSERT INTO {table} (key_id, nonce, seen_at) VALUES (%s, %s, %s) "  # noqa: S608
        "ON CONFLICT (key_id, nonce) DO NOTHING"
    )
    # Two statements in one string need client-side binding (Django's default).
    asynchronous = not connection.in_atomic_block and not connection.settings_dict["OPTIONS"].get("server_side_binding")
    with connection.cursor() as cursor:
        if asynchronous:
            cursor.execute("SET LOCAL synchronous_commit TO off; " + sql, [key_id, nonce, now])
            cursor.nextset()
        else:
            cursor.execute(sql, [key_id, nonce, now])
        return cursor.rowcount == 1


def nonce_prune(*, now: datetime | None = None) -> int:
    """Delete nonces older than twice the skew window; older ones can never be replayed."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=2 * settings.HMAC_CLOCK_SKEW_SECONDS)
    deleted, _ = ApiNonce.objects.filter(seen_at__lt=cutoff).delete()
    return deleted
