"""The SQL of the audit trail: the insert every audited write runs. The rules are in audit.services."""

from __future__ import annotations

import json
from functools import cache

from django.db import connection, models

from audit.models import AuditRecord


@cache
def _insert_sql() -> tuple[list[models.Field], str, str]:
    fields = [field for field in AuditRecord._meta.concrete_fields if not field.primary_key]
    sources = [
        "%s::text[]" if isinstance(field, models.JSONField) else f"%s::{field.db_type(connection)}[]"
        for field in fields
    ]
    selects = [
        f"c{index}::jsonb" if isinstance(field, models.JSONField) else f"c{index}" for index, field in enumerate(fields)
    ]
    aliases = ", ".join(f"c{index}" for index in range(len(fields)))
    columns = ", ".join(f'"{field.column}"' for field in fields)
    sql = (
        f'INSERT INTO "{AuditRecord._meta.db_table}" ({columns}) '  # noqa: S608 (names only)
        f"SELECT {', '.join(selects)} FROM unnest({', '.join(sources)}) WITH ORDINALITY AS u({aliases}, ord) "
        f'ORDER BY ord RETURNING "{AuditRecord._meta.pk.column}"'
    )
    single = (
        f'INSERT INTO "{AuditRecord._meta.db_table}" ({columns}) '  # noqa: S608 (names only)
        f"VALUES ({', '.join('%s::jsonb' if isinstance(field, models.JSONField) else '%s' for field in fields)}) "
        f'RETURNING "{AuditRecord._meta.pk.column}"'
    )
    return fields, sql, single


def audit_records_insert(records: list[AuditRecord]) -> list[AuditRecord]:
    """One INSERT with one array parameter per column (unnest), in order; sets the ids.

    Hand-written because every ingest writes audit rows: save() and bulk_create() build
    and bind one placeholder per value, which cost more CPU than PostgreSQL spent on the
    insert (docs/benchmarks.md). No signal receivers exist for AuditRecord.
    """
    if not records:
        return records
    fields, sql, single = _insert_sql()
    params: list[object] = []
    for field in fields:
        values = [field.pre_save(record, True) for record in records]
        if isinstance(field, models.JSONField):
            values = [None if value is None else json.dumps(value, cls=field.encoder) for value in values]
        params.append(values)
    if len(records) == 1:
        # Scalars bind far cheaper than one-element arrays.
        sql, params = single, [values[0] for values in params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for record, (pk,) in zip(records, cursor.fetchall(), strict=True):
            record.pk = pk
            record._state.adding = False
            record._state.db = connection.alias
    return records
