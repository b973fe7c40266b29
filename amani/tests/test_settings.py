"""Production start-up: no SECRET_KEY with DEBUG off stops it; `check --deploy` is clean."""

from __future__ import annotations

import os
import secrets
import string
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "DATABASE_URL", "DJANGO_SETTINGS_MODULE"}
    }
    environment.update(env)
    environment["DJANGO_SETTINGS_MODULE"] = "amani.settings.base"
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("debug", ["false", "0", ""])
def test_missing_secret_key_with_debug_off_stops_start_up_with_a_clear_message(debug):
    # Set, but empty: variables already in the environment win over a developer's .env file.
    result = run_manage("check", DEBUG=debug, SECRET_KEY="")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert "ImproperlyConfigured" in result.stderr


def test_debug_on_runs_without_a_secret_key():
    result = run_manage("check", DEBUG="true")
    assert result.returncode == 0, result.stderr


def test_check_deploy_is_clean_in_production_mode():
    secret_key = "".join(secrets.choice(string.ascii_letters + string.digits + "!@#%^&*(-_=+)") for _ in range(50))
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY=secret_key,
        ALLOWED_HOSTS="example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_a_database_url_other_than_postgresql_stops_start_up():
    result = run_manage("check", DEBUG="true", DATABASE_URL="sqlite:///db.sqlite3")
    assert result.returncode != 0
    assert "DATABASE_URL must be a postgres:// URL" in result.stderr
