"""CPU per signed single ingest in one process: the WSGI handler called directly, no gunicorn, no network.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/amani_bench .venv/bin/python -m bench.inprocess_cpu [N]

Against a migrated database (after `make bench`, its bench database): creates an API client
and a wallet, then times N new ingests and the same N replayed, each request signed before
the clock. Reports the application's CPU (time.process_time) and the CPU of this process's
PostgreSQL backend (/proc, same machine) per request: both move far less with the load of
other programs than rates and latencies do.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
import uuid
from typing import Any


def backend_cpu_seconds() -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "amani.settings.base")
    os.environ.setdefault("SECRET_KEY", "inprocess-cpu-only")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler

    from access.models import Scope
    from access.services import api_client_create
    from amani.signing import authorization_header
    from wallets.models import Wallet

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    _, issued = api_client_create(name=f"inprocess-{uuid.uuid4().hex[:8]}", scopes=list(Scope.values))
    wallet = Wallet.objects.create(user_id=uuid.uuid4(), provider="fincra", provider_account_id=uuid.uuid4().hex)
    path = f"/api/v1/wallets/{wallet.public_id}/events/ingest"
    application = WSGIHandler()
    run = uuid.uuid4().hex[:8]

    def environ(i: int) -> dict[str, Any]:
        body = json.dumps(
            {
                "event_type": "deposit",
                "amount": "10.00",
                "currency": "NGN",
                "provider_event_id": f"inprocess-{run}-{i}",
                "occurred_at": "2026-11-20T14:02:18Z",
            }
        ).encode()
        header = authorization_header(
            key_id=issued.key_id, secret=issued.secret, method="POST", path=path, query="", body=body
        )
        return {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": path,
            "RAW_URI": path,
            "QUERY_STRING": "",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_AUTHORIZATION": header,
            "HTTP_HOST": "testserver",
            "SERVER_NAME": "testserver",
            "SERVER_PORT": "80",
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
        }

    def phase(label: str, first: int) -> None:
        prepared = [environ(first + i) for i in range(count)]
        statuses: dict[str, int] = {}

        def start_response(status: str, headers: list, exc_info: object = None) -> None:
            statuses[status[:3]] = statuses.get(status[:3], 0) + 1

        backend_before, began = backend_cpu_seconds(), time.process_time()
        for request in prepared:
            b"".join(application(request, start_response))
        app_ms = (time.process_time() - began) / count * 1000
        pg_ms = (backend_cpu_seconds() - backend_before) / count * 1000
        print(f"{label:<8} app {app_ms:.3f} ms  PostgreSQL {pg_ms:.3f} ms CPU per request  {statuses}")

    phase("warm-up", 0)
    phase("new", count)
    phase("replay", count)


if __name__ == "__main__":
    main()
