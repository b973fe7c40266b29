"""A real gunicorn (gunicorn.conf.py, production settings) on the test database, for tests
that need several worker processes or persistent database connections."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from django.conf import settings
from django.db import connection
from prometheus_client.multiprocess import MultiProcessCollector

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def workers_that_served(metrics_dir: Path, route: str) -> int:
    """How many gunicorn workers have answered `route` (each writes its own histogram file)."""
    served = 0
    for path in metrics_dir.glob("histogram_*.db"):
        samples = [s for metric in MultiProcessCollector.merge([str(path)]) for s in metric.samples]
        served += any(s.name.endswith("_count") and s.labels.get("route") == route and s.value for s in samples)
    return served


def database_url() -> str:
    """The test database, as a DATABASE_URL for a server or a command in another process."""
    params = connection.settings_dict
    auth = params["USER"] + (f":{params['PASSWORD']}" if params.get("PASSWORD") else "")
    return f"postgres://{auth}@{params['HOST'] or '127.0.0.1'}:{params['PORT'] or 5432}/{params['NAME']}"


def production_env() -> dict[str, str]:
    """The environment of a server or a management command in production mode on the test database."""
    return {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        "DATABASE_URL": database_url(),
        # The test settings' key: API secrets stored by the tests are encrypted with it.
        "SECRET_KEY": settings.SECRET_KEY,
        "API_SECRET_ENCRYPTION_KEY": settings.API_SECRET_ENCRYPTION_KEY,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
    }


@contextmanager
def gunicorn_server(*, workers: int, metrics_dir: Path, **extra_env: str) -> Iterator[str]:
    """Start gunicorn on the test database; yield its base URL once it answers (its log: gunicorn.log
    beside `metrics_dir`)."""
    port = free_port()
    env = {
        **production_env(),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": str(workers),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "LOG_LEVEL": "WARNING",
        **extra_env,
    }
    log = metrics_dir.parent / "gunicorn.log"
    with log.open("wb") as log_file:
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("gunicorn")), "amani.wsgi:application", "--config", "gunicorn.conf.py"],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{base}/metrics", timeout=5)
                break
            except requests.RequestException:
                assert server.poll() is None, "gunicorn exited:\n" + log.read_text()
                assert time.monotonic() < deadline, "gunicorn did not start:\n" + log.read_text()
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(30)
