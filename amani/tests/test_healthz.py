"""GET /healthz: 200 when the database answers, 503 "database": "down" when it cannot."""

from __future__ import annotations

import socket

import pytest
from django.db import connection
from django.test import Client


def test_healthz_is_ok_with_the_database_up(db):
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_healthz_needs_no_credentials_and_answers_head(db):
    assert Client().head("/healthz").status_code == 200


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens there once the socket closes


@pytest.mark.django_db(transaction=True)
def test_healthz_is_503_database_down_when_the_database_is_unreachable():
    saved = {key: connection.settings_dict[key] for key in ("HOST", "PORT")}
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(closed_port()))
    try:
        response = Client().get("/healthz")
    finally:
        connection.close()
        connection.settings_dict.update(saved)
    assert response.status_code == 503
    assert response.json()["database"] == "down"
    assert response.json()["status"] != "ok"
    # And back up once the database is reachable again.
    assert Client().get("/healthz").json() == {"status": "ok", "database": "ok"}
