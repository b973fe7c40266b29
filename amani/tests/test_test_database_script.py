"""scripts/test_database.py, which `make test` runs: finds or starts PostgreSQL, keeps the exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "test_database.py"

PROBE = """
import os, sys, psycopg
with psycopg.connect(os.environ["DATABASE_URL"], connect_timeout=5) as connection:
    connection.execute("SELECT 1")
print(os.environ["DATABASE_URL"])
sys.exit(int(sys.argv[1]))
"""


def run_script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], env=environment, capture_output=True, text=True, timeout=180
    )


def test_database_url_is_used_when_set_and_the_exit_status_is_the_commands():
    url = "postgres://postgres@127.0.0.1:5432/postgres"
    result = run_script("--", sys.executable, "-c", PROBE, "5", env={"DATABASE_URL": url})
    assert result.returncode == 5
    assert result.stdout.strip() == url


def test_throwaway_cluster_is_started_used_and_removed():
    result = run_script("--mode", "throwaway", "--", sys.executable, "-c", PROBE, "3")
    assert result.returncode == 3, result.stderr
    url = result.stdout.strip()
    assert url.startswith("postgres://postgres@127.0.0.1:") and not url.endswith(":5432/postgres")
    assert "throwaway cluster stopped" in result.stderr
    folder = result.stderr.split("cluster in ", 1)[1].split(" ", 1)[0]
    assert not Path(folder).exists()


def test_no_postgresql_anywhere_prints_what_to_install_and_exits_2():
    result = run_script(
        "--mode", "throwaway", "--pg-bin-glob", "/nonexistent/*", "--", "true", env={"PATH": "/nonexistent"}
    )
    assert result.returncode == 2
    assert "apt-get install postgresql" in result.stderr
    assert "DATABASE_URL" in result.stderr


def test_missing_separator_is_a_usage_error():
    result = run_script("pytest")
    assert result.returncode == 2
    assert "usage" in result.stderr
