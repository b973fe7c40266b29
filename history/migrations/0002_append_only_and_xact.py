"""Prevention and tracking in the database, whoever connects.

1. Wallet events and sealed blocks refuse UPDATE and DELETE (as audit records already do,
   audit 0003). A wrong event is corrected by a compensating event. TRUNCATE needs table
   ownership and stays possible (Django's test flush uses it); verify_history reports it.
2. Every event and audit record carries `xact_id`, the 64-bit id of the transaction that
   wrote it, as a column default: no insert path (ingest, batch, backfill, COPY) has to
   know about it. Rows written before this migration read 0: the first block seals them.
   A constant default first, then the real one, so adding the column rewrites nothing.
3. A statement-level BEFORE INSERT trigger takes the transaction id before any row of the
   statement draws its id from the sequence. So a record whose id is below one already
   sealed had its transaction id before that block was sealed: verify_history can tell a
   late commit (sealed later, fine) from a row slipped in afterwards with an old id.
4. A BRIN index on xact_id: rows are appended in about transaction order, so the sealer
   finds the unsealed tail without a B-tree to maintain on every insert. (0003 replaces it
   with a B-tree: unsummarized ranges made every seal recheck up to a minute of rows.)
"""

from django.db import migrations

SEALED = ("events_walletevent", "audit_auditrecord")

FORWARD = """
CREATE FUNCTION history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are append-only: % is not allowed. %', TG_TABLE_NAME, TG_OP, TG_ARGV[0]
        USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE FUNCTION history_xact_first() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_current_xact_id();
    RETURN NULL;
END;
$$;
CREATE TRIGGER events_walletevent_append_only BEFORE UPDATE OR DELETE ON events_walletevent
    FOR EACH ROW EXECUTE FUNCTION history_append_only(
        'Correct a wrong event with a compensating event (for example a refund, or a withdrawal of the same '
        'amount) ingested through the API or a backfill: the history keeps both.');
CREATE TRIGGER history_block_append_only BEFORE UPDATE OR DELETE ON history_block
    FOR EACH ROW EXECUTE FUNCTION history_append_only('Sealed blocks are evidence: they are never changed.');
"""
for table in SEALED:
    FORWARD += f"""
ALTER TABLE {table} ADD COLUMN xact_id bigint NOT NULL DEFAULT 0;
ALTER TABLE {table} ALTER COLUMN xact_id SET DEFAULT pg_current_xact_id()::text::bigint;
COMMENT ON COLUMN {table}.xact_id IS
    'The writing transaction (pg_current_xact_id). Sealing uses it; 0 = written before the history existed.';
CREATE INDEX {table}_xact_brin ON {table} USING brin (xact_id) WITH (pages_per_range = 16, autosummarize = on);
CREATE TRIGGER {table}_xact_first BEFORE INSERT ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION history_xact_first();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS events_walletevent_append_only ON events_walletevent;
DROP TRIGGER IF EXISTS history_block_append_only ON history_block;
"""
for table in SEALED:
    BACKWARD += f"""
DROP TRIGGER IF EXISTS {table}_xact_first ON {table};
ALTER TABLE {table} DROP COLUMN IF EXISTS xact_id;
"""
BACKWARD += """
DROP FUNCTION IF EXISTS history_xact_first();
DROP FUNCTION IF EXISTS history_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("history", "0001_initial"),
        ("events", "0001_initial"),
        ("audit", "0004_support_group"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD, elidable=False)]
