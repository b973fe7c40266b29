"""Prepared statements with server-side binding, for the few statements every write request runs.

Django's psycopg cursor binds parameters client-side (it formats every value into the
SQL text in Python) and prepares nothing, so PostgreSQL parses and plans each statement
every time. The hot-path statements (API key, nonce, event ingest, batch) instead run on
a psycopg `Cursor` of the same connection that binds server-side and prepares on first
use: a parameter travels as a value, never escaped in Python, and the plan is reused for
the life of the connection (PROFILE.md: -0.25 to -0.8 ms of PostgreSQL CPU and -0.3 ms
of application CPU per request). Behind PgBouncer in transaction pooling this needs
PgBouncer >= 1.21 with `max_prepared_statements` set, or DATABASE_PREPARED_STATEMENTS=false
(docs/scaling.md).

The cursor is wrapped the way Django wraps its own, so query logging (and the statement
counts the tests assert) see these statements too.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, OperationalError, connection, connections
from django.db.backends.utils import CursorWrapper

Params = Sequence[Any] | Mapping[str, Any]


class _PreparedCursor(psycopg.Cursor):
    """Server-side binding; every statement prepared on its first execution on a connection.

    With DATABASE_PREPARED_STATEMENTS off (PgBouncer < 1.21 in transaction pooling) the
    statements are sent unnamed: bound server-side, parsed and planned every time.
    """

    def execute(self, query, params=None, *, prepare=None, binary=None):
        if prepare is None:
            prepare = settings.DATABASE_PREPARED_STATEMENTS
        return super().execute(query, params, prepare=prepare, binary=binary)

    def _send_query_prepared(self, name, pgq, *, binary=None):
        # psycopg records the query for unprepared executions only; Django's query log
        # (last_executed_query, hence the statement counts of the tests) reads it.
        self._query = pgq
        super()._send_query_prepared(name, pgq, binary=binary)


def prepared_cursor() -> CursorWrapper:
    """A Django-wrapped cursor that binds server-side and prepares, on the default connection."""
    db = connections[DEFAULT_DB_ALIAS]  # once: every `connection.x` goes through a thread-local lookup
    db.close_if_health_check_failed()
    db.ensure_connection()
    db.validate_thread_sharing()
    raw_connection = db.connection
    if settings.DATABASE_PREPARED_STATEMENTS and raw_connection.prepare_threshold is None:
        # Django opens connections with preparing switched off (prepare_threshold=None), which
        # psycopg also applies to prepare=True. A threshold never reached keeps Django's own
        # statements unprepared while these, sent with prepare=True, are prepared.
        raw_connection.prepare_threshold = sys.maxsize
    raw = _PreparedCursor(raw_connection)
    return db.make_debug_cursor(raw) if db.queries_logged else db.make_cursor(raw)


def fetch_one_reconnecting(sql: str, params: Params) -> tuple | None:
    """Run a read-only statement and fetch one row; once more on a fresh connection if the old one was dead.

    The first statement of a request runs here (the API key lookup). Without
    CONN_HEALTH_CHECKS (whose `SELECT 1` cost a round trip per request) a persistent
    connection that PostgreSQL or the network dropped while idle is noticed by this
    statement: being a read outside any transaction, it is safe to repeat on a new
    connection, so the caller never sees the dead one. A database that is really down
    fails again and the request is answered 503 service_unavailable.
    """
    try:
        with prepared_cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    except OperationalError:
        if connection.in_atomic_block or connection.is_usable():
            raise
        connection.close()
        with prepared_cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
