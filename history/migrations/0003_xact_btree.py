"""A B-tree on xact_id in place of 0002's BRIN index.

The BRIN index found the unsealed tail only in summarized page ranges. Ranges are
summarized by autovacuum (autosummarize), at most once a minute per database; until
then each one matches every query, so each seal and each seal-lag reading rechecked
every row written in up to the last minute: measured at 80,000 events, 55 ms of
PostgreSQL CPU per seal for 1,000 records (1,441 + 4,055 lossy pages, 140,000 rows
rechecked), more as the ingest rate grows. A B-tree makes it 1 ms plus the records
themselves; it costs each insert one more index entry at the right edge (the primary
key's pattern), which the sealer-on/off comparison in bench/bench_history.py does
not see either way, being present in both phases.

CONCURRENTLY: writers are not blocked while the index builds on a large table, so one
statement per operation, outside a transaction.
"""

from django.db import migrations

SEALED = ("events_walletevent", "audit_auditrecord")


def _swap(table: str) -> list[migrations.RunSQL]:
    brin = f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {table}_xact_brin ON {table} USING brin (xact_id) "
    brin += "WITH (pages_per_range = 16, autosummarize = on)"
    return [
        migrations.RunSQL(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {table}_xact ON {table} (xact_id)",
            f"DROP INDEX CONCURRENTLY IF EXISTS {table}_xact",
            elidable=False,
        ),
        migrations.RunSQL(f"DROP INDEX CONCURRENTLY IF EXISTS {table}_xact_brin", brin, elidable=False),
    ]


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("history", "0002_append_only_and_xact")]

    operations = [operation for table in SEALED for operation in _swap(table)]
