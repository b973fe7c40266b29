"""The suite runs as the service does: connected as its least-privilege role (amani.database_roles).

pytest-django creates and migrates the test database as the configured user (the owner);
conftest.py then creates the role `<test database>_app` with `create_app_role` and logs
every new connection in as it, gunicorn servers and subprocesses included (they build their
DATABASE_URL from the same settings). Only what the service never does runs as the owner:
the flush that empties the tables after a transactional test (TRUNCATE), test setups
that write rows the service could not (database_owner()), and ANALYZE (analyze()).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections

_state: dict[str, str] = {}


def app_role_name(database: str) -> str:
    return f"{database}_app"[:63]  # PostgreSQL's identifier length


def login(user: str) -> None:
    """Every connection opened from now on (any thread) logs in as `user`; open ones close."""
    for connection in connections.all(initialized_only=True):
        connection.close()
    connections.settings[DEFAULT_DB_ALIAS]["USER"] = user


def app_role_start(*, owner: str, role: str) -> None:
    _state.update(owner=owner, role=role)
    login(role)


def app_role_stop() -> None:
    login(_state.pop("owner"))
    _state.pop("role")


def app_role() -> str:
    return _state["role"]


def owner() -> str:
    """The user that owns the tables (the configured one): who creates databases and migrates."""
    return _state.get("owner") or connections.settings[DEFAULT_DB_ALIAS]["USER"]


# ANALYZE needs the table's owner (PostgreSQL 15), and tests that set the planner's estimates
# analyze rows of their own open transaction: a function owned by the owner runs it for them.
ANALYZE_FUNCTION = """
CREATE OR REPLACE FUNCTION test_analyze(target regclass) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    EXECUTE format('ANALYZE %s', target);
END;
$$
"""


def analyze(table: str) -> None:
    """ANALYZE `table` inside the current transaction, as its owner (planner estimates in tests)."""
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute("SELECT test_analyze(%s::regclass)", [table])


@contextmanager
def database_owner() -> Iterator[None]:
    """Connected as the tables' owner inside the block (transactional tests only: the
    connection is closed and reopened, which a test inside a transaction cannot survive)."""
    if "role" not in _state:  # already the owner (the app role is not in use)
        yield
        return
    if connections[DEFAULT_DB_ALIAS].in_atomic_block:
        raise RuntimeError("database_owner() reconnects: use it in transactional tests only.")
    login(_state["owner"])
    try:
        yield
    finally:
        login(_state["role"])
