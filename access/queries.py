"""The SQL of authenticating a signed request: the key lookup and the nonce statement, which run
on every request (docs/benchmarks.md). The rules are in access.services."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache

from access.models import ApiClient, ApiKey, ApiNonce
from amani.db import fetch_one_reconnecting, prepared_cursor

# Touch last_used_at at most once a minute per key: a write on every request would
# cost a row lock and WAL per call for a value read only by people.
LAST_USED_RESOLUTION = timedelta(seconds=60)


@cache
def _api_key_lookup_sql() -> str:
    key, client = ApiKey._meta.db_table, ApiClient._meta.db_table
    return (
        f"SELECT k.secret_encrypted, c.scopes::text, "  # noqa: S608 (table names only)
        f"k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > %(now)s) AND c.is_active "
        f"FROM {key} k JOIN {client} c ON c.id = k.client_id WHERE k.key_id = %(key_id)s"
    )


def api_key_row(*, key_id: str, now: datetime) -> tuple[str, str, bool] | None:
    """(secret_encrypted, the client's scopes as JSON text, usable at `now`) of a key, or None.

    One prepared statement: it runs first on every signed request, on a connection that
    may have died while idle (amani.db.fetch_one_reconnecting).
    """
    return fetch_one_reconnecting(_api_key_lookup_sql(), {"key_id": key_id, "now": now})


@cache
def _nonce_record_sql() -> str:
    key, client, nonce = ApiKey._meta.db_table, ApiClient._meta.db_table, ApiNonce._meta.db_table
    seconds = int(LAST_USED_RESOLUTION.total_seconds())
    return (
        f"WITH usable AS (SELECT k.id FROM {key} k JOIN {client} c ON c.id = k.client_id "  # noqa: S608 (names only)
        f"WHERE k.key_id = %(key_id)s AND k.revoked_at IS NULL "
        f"AND (k.expires_at IS NULL OR k.expires_at > %(now)s) AND c.is_active), "
        f"asynchronous AS (SELECT set_config('synchronous_commit', %(synchronous_commit)s, true)), "
        f"recorded AS (INSERT INTO {nonce} (key_id, nonce, seen_at) "
        f"SELECT %(key_id)s, %(nonce)s, %(now)s FROM usable, asynchronous "
        f"ON CONFLICT (key_id, nonce) DO NOTHING RETURNING 1), "
        f"touched AS (UPDATE {key} SET last_used_at = %(now)s WHERE id IN (SELECT id FROM usable) "
        f"AND (last_used_at IS NULL OR last_used_at < %(now)s - interval '{seconds} seconds') RETURNING 1) "
        f"SELECT EXISTS (SELECT FROM usable), EXISTS (SELECT FROM recorded)"
    )


def nonce_insert_if_usable(*, key_id: str, nonce: str, now: datetime, synchronous_commit: str) -> tuple[bool, bool]:
    """One prepared statement: whether the key is usable at `now`, and whether the nonce was new.

    The nonce is inserted only for a usable key (ON CONFLICT on (key_id, nonce): a nonce
    the key already used is not), and the key's last_used_at is touched when older than
    LAST_USED_RESOLUTION. `synchronous_commit` ("on" or "off") is set for the statement's
    own transaction (set_config(…, true)).
    """
    params = {"key_id": key_id, "nonce": nonce, "now": now, "synchronous_commit": synchronous_commit}
    with prepared_cursor() as cursor:
        cursor.execute(_nonce_record_sql(), params)
        return cursor.fetchone()
