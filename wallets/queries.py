"""The SQL of the wallet registry: registration, and the lookups by public id. The rules are in
wallets.services and wallets.selectors."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from functools import cache
from typing import Any
from uuid import UUID

from django.db import connection

from amani.db import prepared_cursor
from amani.rows import model_from_row
from audit.models import AuditRecord
from wallets.models import Wallet

_COLUMNS = tuple(field.column for field in Wallet._meta.concrete_fields)


@cache
def _register_sql() -> str:
    table, audit = Wallet._meta.db_table, AuditRecord._meta.db_table
    columns = ", ".join(_COLUMNS)
    inserted = [column for column in _COLUMNS if column != "id"]
    values = ", ".join("%(metadata)s::jsonb" if column == "metadata" else f"%({column})s" for column in inserted)
    return (
        f"WITH candidates AS (SELECT {columns} FROM {table} "  # noqa: S608 (names only)
        "WHERE (provider = %(provider)s AND provider_account_id = %(provider_account_id)s) "
        "OR idempotency_key = %(idempotency_key)s), "
        f"new_wallet AS (INSERT INTO {table} ({', '.join(inserted)}) SELECT {values} "
        f"WHERE NOT EXISTS (SELECT FROM candidates) ON CONFLICT DO NOTHING RETURNING {columns}), "
        f"audit AS (INSERT INTO {audit} "
        "(action, actor_type, actor_id, user_id, resource_type, resource_id, details, request_id, created_at) "
        "SELECT %(action)s, %(actor_type)s, %(actor_id)s, user_id, %(resource_type)s, public_id::text, "
        "%(details)s::jsonb, %(request_id)s, created_at FROM new_wallet) "
        f"SELECT true, {columns} FROM new_wallet UNION ALL SELECT false, {columns} FROM candidates"
    )


def wallet_insert_unless_known(
    *, wallet: dict[str, Any], audit: dict[str, Any], details: dict[str, Any]
) -> tuple[Wallet | None, list[Wallet]]:
    """One autocommit statement: the wallets holding this account or idempotency key, and,
    when there are none, the new wallet inserted with its audit record.

    `wallet` holds every column but `id`; `audit` the action, actor_type, actor_id,
    request_id and resource_type of the audit record. Returns (the new wallet or None, the
    wallets found). Neither when a racing request committed one after this statement began.
    """
    params = {**wallet, "metadata": json.dumps(wallet["metadata"]), **audit, "details": json.dumps(details)}
    with prepared_cursor() as cursor:
        cursor.execute(_register_sql(), params)
        found = cursor.fetchall()
    new = [model_from_row(Wallet, row[1:], connection) for row in found if row[0]]
    known = [model_from_row(Wallet, row[1:], connection) for row in found if not row[0]]
    return (new[0] if new else None), known


def wallet_columns(*, public_id: UUID, now: dt.datetime, **values: Any) -> dict[str, Any]:
    """The column values of a new wallet (every concrete field but the primary key)."""
    return {"public_id": public_id, "is_active": True, "created_at": now, "updated_at": now, **values}


def wallet_refs_rows(public_ids: Iterable[UUID]) -> list[tuple[int, UUID, str, UUID]]:
    """(id, public_id, provider, user_id) of the wallets with these public ids, in one statement."""
    with prepared_cursor() as cursor:
        cursor.execute(
            f"SELECT id, public_id, provider, user_id FROM {Wallet._meta.db_table} WHERE public_id = ANY(%s::uuid[])",  # noqa: S608
            [list(public_ids)],
        )
        return cursor.fetchall()


@cache
def _wallet_by_public_id_sql() -> str:
    meta = Wallet._meta
    columns = ", ".join(f'"{field.column}"' for field in meta.concrete_fields)
    return f'SELECT {columns} FROM "{meta.db_table}" WHERE "public_id" = %s'  # noqa: S608 (names only)


def wallet_by_public_id(public_id: UUID) -> Wallet | None:
    """The wallet with this public id, by one indexed SELECT (no ORM query to compile), or None."""
    with connection.cursor() as cursor:
        cursor.execute(_wallet_by_public_id_sql(), [public_id])
        row = cursor.fetchone()
    return None if row is None else model_from_row(Wallet, row, connection)
