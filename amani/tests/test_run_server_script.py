"""scripts/run_server.py, which `make run` runs: an embedded PostgreSQL kept in a folder, stopped with Ctrl-C."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from amani.signing import HmacAuth
from scripts.embedded_postgres_cluster import free_port, make_folder

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 120.0


@pytest.fixture
def data_dir() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="amani-run-"))
    make_folder(root)
    try:
        yield root / "pgdata"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def serve(data_dir: Path, output: Path) -> tuple[subprocess.Popen, str]:
    """`make run`'s command on `data_dir`, in a process group of its own as a terminal would start it."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "DJANGO_SETTINGS_MODULE"}}
    env.update(DEBUG="true", SECRET_KEY="", LOG_LEVEL="WARNING")
    command = [sys.executable, "scripts/run_server.py", "--data-dir", str(data_dir)]
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [*command, "--bind", f"127.0.0.1:{port}", "--workers", "1"],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + TIMEOUT
    while True:
        assert process.poll() is None, output.read_text()
        try:
            if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                return process, base
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, "the server did not answer"
        time.sleep(0.1)


def interrupt(process: subprocess.Popen) -> None:
    """Ctrl-C at the terminal: SIGINT to the whole foreground process group."""
    os.killpg(process.pid, signal.SIGINT)
    process.wait(TIMEOUT)


def demo_auth(output: Path) -> HmacAuth:
    text = output.read_text()
    key_id = re.search(r"^  key id: (\S+)$", text, re.MULTILINE).group(1)
    secret = re.search(r"^  secret: (\S+)$", text, re.MULTILINE).group(1)
    return HmacAuth(key_id, secret)


def test_data_survives_a_restart_and_ctrl_c_stops_the_database_too(data_dir, tmp_path):
    process, base = serve(data_dir, tmp_path / "first.log")
    try:
        body = {"user_id": str(uuid.uuid4()), "provider": "fincra", "provider_account_id": "acct_kept"}
        created = requests.post(f"{base}/api/v1/wallets", json=body, auth=demo_auth(tmp_path / "first.log"), timeout=10)
        assert created.status_code == 201, created.text
    finally:
        interrupt(process)
    assert "created a PostgreSQL cluster" in (tmp_path / "first.log").read_text()
    assert (data_dir / "PG_VERSION").exists()
    assert not (data_dir / "postmaster.pid").exists()  # the database stopped with the server

    process, base = serve(data_dir, tmp_path / "second.log")
    try:
        # A fresh key for the same demo client; the wallet written by the first run is there.
        wallet = requests.get(
            f"{base}/api/v1/wallets/{created.json()['id']}", auth=demo_auth(tmp_path / "second.log"), timeout=10
        )
        assert wallet.status_code == 200, wallet.text
    finally:
        interrupt(process)
    assert "created a PostgreSQL cluster" not in (tmp_path / "second.log").read_text()
    assert not (data_dir / "postmaster.pid").exists()
