"""The SQL of a delivery's hot path, written out: compiling the ORM's versions of the wallet lookup
and the delivery insert cost a webhook about 0.5 ms of CPU, which put it above a single ingest's
budget (docs/benchmarks.md, "Provider webhooks"). The rules are in webhooks.services."""

from __future__ import annotations

import hashlib
from functools import cache

from django.db import connection

from amani.rows import model_from_row
from wallets.models import Wallet
from webhooks.models import WebhookDelivery

# Advisory lock space (two-int form, apart from the events' bigint key locks) of a provider's reference.
_REFERENCE_LOCK_NAMESPACE = 0x77686B  # "whk"
# The wallet fields a provider may name a wallet by (providers.base.Movement.wallet_field).
WALLET_KEY_FIELDS = frozenset({"provider_customer_id", "provider_account_id"})


@cache
def _wallets_sql(field: str) -> str:
    meta = Wallet._meta
    columns = ", ".join(f'"{f.column}"' for f in meta.concrete_fields)
    column = meta.get_field(field).column
    # ix_wallet_provider_customer / uq_wallet_provider_account
    return f'SELECT {columns} FROM "{meta.db_table}" WHERE "provider" = %s AND "{column}" = %s LIMIT 2'  # noqa: S608


def wallets_by_provider_key(*, provider: str, field: str, key: str) -> list[Wallet]:
    """At most two wallets of `provider` whose `field` is `key` (two: enough to see it is ambiguous)."""
    if field not in WALLET_KEY_FIELDS:
        raise ValueError(f"not a wallet key field: {field}")
    with connection.cursor() as cursor:
        cursor.execute(_wallets_sql(field), [provider, key])
        return [model_from_row(Wallet, row, connection) for row in cursor.fetchall()]


@cache
def _delivery_insert() -> tuple[list, str]:
    meta = WebhookDelivery._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    columns = ", ".join(f'"{f.column}"' for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    return fields, f'INSERT INTO "{meta.db_table}" ({columns}) VALUES ({placeholders}) RETURNING "id"'  # noqa: S608


def delivery_insert(delivery: WebhookDelivery) -> None:
    """Insert a new delivery (every field as set on the instance), as `save(force_insert=True)` would."""
    fields, sql = _delivery_insert()
    values = [field.get_db_prep_save(getattr(delivery, field.attname), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        delivery.pk = cursor.fetchone()[0]
    delivery._state.adding = False


def reference_lock(*, provider: str, reference: str) -> None:
    """Take the transaction-level advisory lock of a provider's reference (held until commit)."""
    digest = hashlib.blake2b(f"{provider}\x00{reference}".encode(), digest_size=4).digest()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)",
            [_REFERENCE_LOCK_NAMESPACE, int.from_bytes(digest, "big", signed=True)],
        )
