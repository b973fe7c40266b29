"""The SQL of the events app, by what each statement does: the event write paths, the day buckets
(their upsert, recomputation and repair) and the statement's snapshot. The rules are in
events.services, events.balances and events.statement.

The request-path statements here are prepared, with server-side binding (amani.db): the
arrays of a batch travel as values, never escaped in Python, and the plans are made
once per connection. The backfill COPYs its records into a staging table and runs
events_insert_sql over it (events_insert_staged).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from django.db import connection, connections

from amani.db import prepared_cursor
from audit.models import AuditRecord
from events.models import HELD_SIGN, LEDGER_SIGN, BalanceBucket, WalletEvent
from wallets.models import Wallet

if TYPE_CHECKING:
    from amani.actors import Actor
    from events.services import EventRow
    from events.validation import EventInput

EVENTS = WalletEvent._meta.db_table
WALLETS = Wallet._meta.db_table
AUDIT = AuditRecord._meta.db_table

INSERT_COLUMNS = (
    "public_id",
    "wallet_id",
    "provider",
    "event_type",
    "amount",
    "currency",
    "provider_event_id",
    "idempotency_key",
    "metadata",
    "occurred_at",
    "created_at",
)
# PostgreSQL types of INSERT_COLUMNS, in order (the batch sends one array of each).
_COLUMN_TYPES = (
    "uuid",
    "bigint",
    "text",
    "text",
    "numeric",
    "text",
    "text",
    "text",
    "text",  # metadata: JSON text, cast per element (::jsonb) in the SELECT
    "timestamptz",
    "timestamptz",
)
INSERTED_KEYS = "id, public_id, provider, provider_event_id, idempotency_key"
InsertedKey = tuple[int, uuid.UUID, str, str | None, str | None]
# A stored event read back: (id, public_id, wallet_id, wallet public id) and then these, in order.
ROW_TAIL = tuple(column for column in INSERT_COLUMNS if column not in ("public_id", "wallet_id"))
# The wallet's public id by a correlated lookup, not a join: these statements run with generic
# plans, and a generic plan joined the events found to the whole wallets table (hash join over
# a sequential scan, 0.2 ms at 1,000 wallets and growing with them).
_EVENT_SELECT = (
    f"e.id, e.public_id, e.wallet_id, (SELECT w.public_id FROM {WALLETS} w WHERE w.id = e.wallet_id) "  # noqa: S608
    "AS wallet_public_id, " + ", ".join(f"e.{column}" for column in ROW_TAIL)
)
_AUDIT_COLUMNS = "action, actor_type, actor_id, user_id, resource_type, resource_id, details, request_id, created_at"


def _signed_amount_sql(signs: dict[str, int], amount: str, event_type: str = "event_type") -> str:
    """events.balances._signed_amount as SQL text (same sign tables), for the bucket upsert and the recomputation."""
    plus = ", ".join(f"'{name}'" for name, sign in sorted(signs.items()) if sign > 0)
    minus = ", ".join(f"'{name}'" for name, sign in sorted(signs.items()) if sign < 0)
    return f"CASE WHEN {event_type} IN ({plus}) THEN {amount} WHEN {event_type} IN ({minus}) THEN -{amount} ELSE 0 END"


def bucket_upsert_sql(source: str) -> str:
    """One statement adding the events of `source` to their day buckets.

    `source` is a relation with the columns wallet_id, currency, event_type, amount
    and occurred_at: the rows an INSERT … RETURNING just wrote (a CTE of
    events.services). The deltas are summed per (wallet, currency, UTC day) and
    upserted in that order, so concurrent writers lock bucket rows in the same order
    and cannot deadlock. The ledger and held rules are the sign tables of events.models,
    as in the verification.
    """
    table = BalanceBucket._meta.db_table
    ledger = _signed_amount_sql(LEDGER_SIGN, "amount")
    held = _signed_amount_sql(HELD_SIGN, "amount")
    return (
        f"INSERT INTO {table} AS b (wallet_id, currency, day, ledger, held, event_count, last_event_at) "  # noqa: S608
        f"SELECT wallet_id, currency, (occurred_at AT TIME ZONE 'UTC')::date, SUM({ledger}), SUM({held}), "
        f"COUNT(*), MAX(occurred_at) FROM {source} GROUP BY 1, 2, 3 ORDER BY 1, 2, 3 "
        "ON CONFLICT (wallet_id, currency, day) DO UPDATE SET "
        "ledger = b.ledger + EXCLUDED.ledger, "
        "held = b.held + EXCLUDED.held, "
        "event_count = b.event_count + EXCLUDED.event_count, "
        "last_event_at = CASE WHEN EXCLUDED.last_event_at > b.last_event_at "
        "THEN EXCLUDED.last_event_at ELSE b.last_event_at END"
    )


def events_insert_sql(source: str, *, audit_batch: bool = False) -> str:
    """Insert the rows of `source` (a SELECT of INSERT_COLUMNS, in order) and bucket the new ones.

    One statement: `INSERT … ON CONFLICT DO NOTHING` with no conflict target (every
    unique key counts), the day-bucket upsert of exactly the rows it inserted
    (bucket_upsert_sql over its RETURNING), and the inserted rows'
    keys (INSERTED_KEYS) as the result. With `audit_batch`, one audit record naming
    every event inserted is written by the same statement (parameters %(action)s,
    %(actor_type)s, %(actor_id)s, %(request_id)s, %(resource_type)s, %(batch_id)s, %(now)s).
    """
    sql = (
        f"WITH new_events AS (INSERT INTO {EVENTS} ({', '.join(INSERT_COLUMNS)}) {source} "
        f"ON CONFLICT DO NOTHING RETURNING {INSERTED_KEYS}, wallet_id, currency, event_type, amount, occurred_at), "
        f"buckets AS ({bucket_upsert_sql('new_events')}) "
    )
    if audit_batch:
        sql += (
            f", audit AS (INSERT INTO {AUDIT} ({_AUDIT_COLUMNS}) "  # noqa: S608 (names only)
            "SELECT %(action)s, %(actor_type)s, %(actor_id)s, NULL, %(resource_type)s, %(batch_id)s, "
            "jsonb_build_object('created', count(*), 'event_ids', jsonb_agg(public_id::text ORDER BY id)), "
            "%(request_id)s, %(now)s FROM new_events HAVING count(*) > 0) "
        )
    return sql + f"SELECT {INSERTED_KEYS} FROM new_events"  # noqa: S608 (names only)


def _row_values(row: EventRow) -> tuple[object, ...]:
    return (
        row.public_id,
        row.wallet_id,
        row.provider,
        row.event_type,
        row.amount,
        row.currency,
        row.provider_event_id,
        row.idempotency_key,
        json.dumps(row.metadata),
        row.occurred_at,
        row.created_at,
    )


@cache
def _batch_insert_sql() -> str:
    columns = ", ".join(INSERT_COLUMNS)
    arrays = ", ".join(f"%(c{index})s::{kind}[]" for index, kind in enumerate(_COLUMN_TYPES))
    select = ", ".join("metadata::jsonb" if column == "metadata" else column for column in INSERT_COLUMNS)
    source = f"SELECT {select} FROM unnest({arrays}) WITH ORDINALITY AS u({columns}, ord) ORDER BY ord"  # noqa: S608
    return events_insert_sql(source, audit_batch=True)


def events_insert_audited(
    *, rows: Sequence[EventRow], actor: Actor, action: str, resource_type: str, batch_id: uuid.UUID
) -> list[InsertedKey]:
    """Insert `rows` in the given order, bucket the new ones and audit them, in one autocommit statement.

    The rows travel as one array per column (unnest … WITH ORDINALITY, ORDER BY the
    ordinal): eleven parameters whatever the batch size, bound server-side. Returns the
    keys of the rows inserted.
    """
    params: dict[str, Any] = {f"c{index}": [] for index in range(len(INSERT_COLUMNS))}
    arrays = list(params.values())
    for row in rows:
        for array, value in zip(arrays, _row_values(row), strict=True):
            array.append(value)
    params.update(
        action=action,
        actor_type=actor.type,
        actor_id=actor.id,
        request_id=actor.request_id,
        resource_type=resource_type,
        batch_id=str(batch_id),
        now=dt.datetime.now(dt.UTC),
    )
    with prepared_cursor() as cursor:
        cursor.execute(_batch_insert_sql(), params)
        return cursor.fetchall()


def _event_row(values: Sequence[Any]) -> EventRow:
    """An EventRow from (_EVENT_SELECT) values; Django has psycopg load jsonb as text."""
    from events.services import EventRow

    at = 4 + ROW_TAIL.index("metadata")
    metadata = values[at]
    return EventRow(*values[:at], json.loads(metadata) if isinstance(metadata, str) else metadata, *values[at + 1 :])


def events_matching(rows: Sequence[EventRow], *, exclude_ids: set[int]) -> list[EventRow]:
    """One SELECT of the stored events sharing a dedup key with any of `rows`.

    Each branch of the OR is served by its unique index (provider event ids are grouped
    by provider, so the pair index is used, and providers per batch are few).
    """
    conditions = ["e.public_id = ANY(%s::uuid[])"]
    params: list[object] = [[row.public_id for row in rows if row.public_id is not None]]
    keys = [row.idempotency_key for row in rows if row.idempotency_key is not None]
    if keys:
        conditions.append("e.idempotency_key = ANY(%s::text[])")
        params.append(keys)
    by_provider: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        if row.provider_event_id is not None:
            by_provider[row.provider].append(row.provider_event_id)
    for provider, provider_event_ids in sorted(by_provider.items()):
        conditions.append("(e.provider = %s AND e.provider_event_id = ANY(%s::text[]))")
        params += [provider, provider_event_ids]
    sql = f"SELECT {_EVENT_SELECT} FROM {EVENTS} e WHERE {' OR '.join(conditions)}"  # noqa: S608
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    return [_event_row(values) for values in found if values[0] not in exclude_ids]


@cache
def _ingest_one_sql() -> str:
    values = ", ".join(
        {
            "wallet_id": "w.id",
            "provider": "w.provider",
            "metadata": "%(metadata)s::jsonb",
        }.get(column, f"%({column})s")
        for column in INSERT_COLUMNS
    )
    return (
        f"WITH wallet AS (SELECT id, provider, user_id FROM {WALLETS} WHERE public_id = %(wallet_public_id)s), "  # noqa: S608
        f"new_events AS (INSERT INTO {EVENTS} ({', '.join(INSERT_COLUMNS)}) SELECT {values} FROM wallet w "
        "WHERE %(provider_sent)s::text IS NULL OR w.provider = %(provider_sent)s::text "
        "ON CONFLICT DO NOTHING RETURNING id, wallet_id, currency, event_type, amount, occurred_at), "
        f"buckets AS ({bucket_upsert_sql('new_events')}), "
        f"audit AS (INSERT INTO {AUDIT} ({_AUDIT_COLUMNS}) "
        "SELECT %(action)s, %(actor_type)s, %(actor_id)s, w.user_id, %(resource_type)s, %(public_id)s::text, "
        "%(details)s::jsonb, %(request_id)s, %(created_at)s FROM new_events, wallet w), "
        # What blocked the insert, in the same snapshot: a replay costs no extra round trip. A row
        # committed by a racing request after this statement began is not seen here (read again then).
        # One branch per unique key, each an equality on its unique index: the generic plan keeps
        # those index scans whatever the statistics were when it was made, where an OR of the three
        # was planned as a sequential scan on a young table and kept (make bench, duplicates at
        # 6.7 ms of PostgreSQL CPU each). An event matching by two keys comes back twice:
        # event_insert_one keeps one.
        f"earlier AS (SELECT {_EVENT_SELECT} FROM {EVENTS} e "
        "WHERE NOT EXISTS (SELECT FROM new_events) AND e.public_id = %(public_id)s "
        f"UNION ALL SELECT {_EVENT_SELECT} FROM {EVENTS} e "
        "WHERE NOT EXISTS (SELECT FROM new_events) "
        "AND e.provider = (SELECT provider FROM wallet) AND e.provider_event_id = %(provider_event_id)s "
        f"UNION ALL SELECT {_EVENT_SELECT} FROM {EVENTS} e "
        "WHERE NOT EXISTS (SELECT FROM new_events) AND e.idempotency_key = %(idempotency_key)s) "
        "SELECT w.id, w.provider, n.id, earlier.* "
        "FROM wallet w LEFT JOIN new_events n ON TRUE LEFT JOIN earlier ON TRUE"
    )


def event_insert_one(
    *, row: EventRow, provider_sent: str | None, actor: Actor, action: str, resource_type: str, details: dict
) -> tuple[int, str, int | None, list[EventRow]] | None:
    """One autocommit statement: find the wallet, insert the event unless a dedup key is taken,
    bucket it and write its audit record; else read the events that hold its keys.

    `row.wallet_public_id` names the wallet; `row.wallet_id` and `row.provider` are filled in
    from it. Nothing is written when the wallet's provider is not `provider_sent` (if sent).
    Returns None for an unknown wallet, else (the wallet's id and provider, the new event's
    id or None, the earlier events matching its keys when it was not inserted).
    """
    params = {
        "wallet_public_id": row.wallet_public_id,
        "provider_sent": provider_sent,
        **dict(zip(INSERT_COLUMNS, _row_values(row), strict=True)),
        "action": action,
        "actor_type": actor.type,
        "actor_id": actor.id,
        "request_id": actor.request_id,
        "resource_type": resource_type,
        "details": json.dumps(details),
    }
    with prepared_cursor() as cursor:
        cursor.execute(_ingest_one_sql(), params)
        found = cursor.fetchall()
    if not found:
        return None
    wallet_id, provider, new_id = found[0][:3]
    earlier = {values[3]: values[3:] for values in found if values[3] is not None}  # by event id, once each
    return wallet_id, provider, new_id, [_event_row(values) for values in earlier.values()]


# The backfill's staging table: its columns and types, in COPY order (staging_line writes them):
# a record as parsed, its wallet by public id (the INSERT … SELECT joins the wallet for its pk and provider).
STAGING = "backfill_event_staging"
STAGING_COLUMNS = {
    "line": "integer",
    "public_id": "uuid",
    "wallet_public_id": "uuid",
    "event_type": "varchar(16)",
    "amount": "numeric",
    "currency": "varchar(3)",
    "provider_event_id": "varchar(255)",
    "idempotency_key": "varchar(255)",
    "metadata": "jsonb",
    "occurred_at": "timestamptz",
}


def _copy_text(value: str | None) -> str:
    r"""A text value as a field of COPY's text format: \N for NULL, backslash escapes for the rest.

    Only backslash, newline, carriage return and tab (the delimiter) need escaping;
    NUL and unpaired surrogates never get here (events.validation refuses them).
    """
    if value is None:
        return "\\N"
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def staging_line(line_no: int, item: EventInput) -> str:
    """One staging row (STAGING_COLUMNS) in COPY's text format, newline included."""
    return (
        "\t".join(
            (
                str(line_no),
                "\\N" if item.event_id is None else str(item.event_id),
                str(item.wallet_id),
                item.event_type,
                str(item.amount),
                item.currency,
                _copy_text(item.provider_event_id),
                _copy_text(item.idempotency_key),
                _copy_text(json.dumps(item.metadata)),
                item.occurred_at.isoformat(),
            )
        )
        + "\n"
    )


def staging_create() -> None:
    """The session's staging table (STAGING_COLUMNS), emptied at every commit."""
    with connection.cursor() as cursor:
        columns = ", ".join(f"{name} {kind}" for name, kind in STAGING_COLUMNS.items())
        cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGING} ({columns}) ON COMMIT DELETE ROWS")


@cache
def _staged_insert_sql() -> str:
    select = ", ".join(
        {
            "public_id": "COALESCE(s.public_id, gen_random_uuid())",  # cheaper than uuid4() per record here
            "wallet_id": "w.id",
            "provider": "w.provider",
            "created_at": "now()",
        }.get(column, f"s.{column}")
        for column in INSERT_COLUMNS
    )
    return events_insert_sql(
        f"SELECT {select} FROM {STAGING} s JOIN {WALLETS} w "  # noqa: S608 (names only)
        "ON w.public_id = s.wallet_public_id ORDER BY s.line"
    )


def events_insert_staged(lines: Sequence[str], *, empty_after: bool) -> list[InsertedKey] | None:
    """COPY the staging lines (staging_line), then insert them in order, bucketing the new ones, in one statement.

    Returns the keys of the inserted rows, or None when every row was inserted. With
    `empty_after` the staging table is emptied at once (inside a transaction that
    never commits, ON COMMIT would never empty it).
    """
    with connection.cursor() as cursor:
        # The lines were formatted before (a reader thread): here they are only sent.
        with cursor.cursor.copy(f"COPY {STAGING} ({', '.join(STAGING_COLUMNS)}) FROM STDIN") as copy:
            copy.write("".join(lines).encode())
        cursor.execute(_staged_insert_sql())
        # Usually every row is new: then the returned keys are not needed, so not decoded.
        inserted = None if cursor.rowcount == len(lines) else cursor.fetchall()
        if empty_after:
            cursor.execute(f"TRUNCATE {STAGING}")
    return inserted


def _recomputation_sql(*, one_wallet: bool) -> str:
    """Every (wallet, currency, day) whose bucket differs from the sums of its events, from the first event on."""
    buckets = BalanceBucket._meta.db_table
    events = WalletEvent._meta.db_table
    wallets = Wallet._meta.db_table
    ledger = _signed_amount_sql(LEDGER_SIGN, "e.amount", "e.event_type")
    held = _signed_amount_sql(HELD_SIGN, "e.amount", "e.event_type")
    event_filter = "WHERE e.wallet_id = %s " if one_wallet else ""
    bucket_filter = "WHERE b.wallet_id = %s " if one_wallet else ""
    return (
        "WITH expected AS ("  # noqa: S608
        f"SELECT e.wallet_id, e.currency, (e.occurred_at AT TIME ZONE 'UTC')::date AS day, "
        f"SUM({ledger}) AS ledger, SUM({held}) AS held, COUNT(*) AS event_count, "
        f"MAX(e.occurred_at) AS last_event_at FROM {events} e {event_filter}GROUP BY 1, 2, 3"
        "), stored AS ("
        f"SELECT b.wallet_id, b.currency, b.day, b.ledger, b.held, b.event_count, b.last_event_at "
        f"FROM {buckets} b {bucket_filter}"
        ") SELECT w.public_id, COALESCE(x.currency, s.currency), COALESCE(x.day, s.day), "
        "x.wallet_id IS NOT NULL, x.ledger, x.held, x.event_count, x.last_event_at, "
        "s.wallet_id IS NOT NULL, s.ledger, s.held, s.event_count, s.last_event_at "
        "FROM expected x FULL OUTER JOIN stored s "
        "ON s.wallet_id = x.wallet_id AND s.currency = x.currency AND s.day = x.day "
        f"JOIN {wallets} w ON w.id = COALESCE(x.wallet_id, s.wallet_id) "
        "WHERE x.wallet_id IS NULL OR s.wallet_id IS NULL OR x.ledger <> s.ledger OR x.held <> s.held "
        "OR x.event_count <> s.event_count OR x.last_event_at <> s.last_event_at "
        "ORDER BY 1, 2, 3"
    )


def bucket_mismatch_rows(*, wallet_pk: int | None) -> Iterator[tuple]:
    """The rows of the recomputation (_recomputation_sql), of one wallet or of all, streamed.

    Each row: the wallet's public id, currency, day, whether the events have that
    bucket, their ledger, held, count and last time, whether the bucket is stored, and
    its ledger, held, count and last time.
    """
    sql = _recomputation_sql(one_wallet=wallet_pk is not None)
    params = [wallet_pk, wallet_pk] if wallet_pk is not None else []
    # A server-side cursor: the rows stream, however many there are.
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(1000):
            yield from rows


def buckets_lock_share() -> None:
    """LOCK the buckets table IN SHARE MODE until the end of the transaction (the repair: events.balances)."""
    with connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {BalanceBucket._meta.db_table} IN SHARE MODE")


def buckets_rewrite(changes: Iterable[tuple[tuple[int, str, dt.date], tuple | None]]) -> None:
    """Per ((wallet pk, currency, day), values): delete that bucket when values is None, else upsert
    it with values (ledger, held, event_count, last_event_at); one statement each."""
    buckets = BalanceBucket._meta.db_table
    with connection.cursor() as cursor:
        for key, expected in changes:
            if expected is None:
                cursor.execute(f"DELETE FROM {buckets} WHERE wallet_id = %s AND currency = %s AND day = %s", key)  # noqa: S608
                continue
            cursor.execute(
                f"INSERT INTO {buckets} (wallet_id, currency, day, ledger, held, event_count, last_event_at) "  # noqa: S608
                "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (wallet_id, currency, day) DO UPDATE SET "
                "ledger = EXCLUDED.ledger, held = EXCLUDED.held, event_count = EXCLUDED.event_count, "
                "last_event_at = EXCLUDED.last_event_at",
                [*key, *expected],
            )


def snapshot_repeatable_read(using: str) -> None:
    """Make the transaction just begun on `using` REPEATABLE READ READ ONLY: its statements share one snapshot."""
    with connections[using].cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
