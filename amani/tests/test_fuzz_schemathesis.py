"""Schemathesis against /api/v1/schema: every operation, signed requests, no 5xx, responses per schema.

The schema is loaded from the application itself (GET /api/v1/schema). Each generated case is turned
into the exact request `requests` would send, signed with the project's own client
(amani.signing.HmacAuth: method, path, query and body bytes as sent), and run through
Django's test client in process. Both schema-valid (positive) and schema-violating
(negative) inputs are generated; wallet ids are drawn either at random or from real
wallets, so the deeper code paths run too.

Bounded by FUZZ_EXAMPLES (default 40) examples per operation and mode, derandomized
(the same inputs every run) unless FUZZ_RANDOM is set. A summary (inputs
tried, status counts, 5xx seen) is written to FUZZ_REPORT (default: the test's tmp dir).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import Counter
from pathlib import Path

import pytest
import requests
import schemathesis
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from schemathesis.transport.requests import REQUESTS_TRANSPORT

from amani.signing import HmacAuth
from wallets.tests.factories import WalletFactory

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
CHECKS = [not_a_server_error, response_schema_conformance]
CONTRACT_OPERATIONS = {
    ("POST", "/api/v1/wallets"),
    ("GET", "/api/v1/wallets"),
    ("GET", "/api/v1/wallets/{wallet_id}"),
    ("POST", "/api/v1/wallets/{wallet_id}/events/ingest"),
    ("GET", "/api/v1/wallets/{wallet_id}/events"),
    ("POST", "/api/v1/events/batch"),
    ("GET", "/api/v1/wallets/{wallet_id}/balance"),
    ("POST", "/api/v1/wallets/{wallet_id}/provider-balances"),
    ("GET", "/api/v1/wallets/{wallet_id}/reconciliation"),
}


@pytest.fixture
def schema(db):
    """The schema as the application serves it (loaded through Django's test client, which,
    unlike a plain WSGI call, keeps the test's database connection)."""
    response = Client().get("/api/v1/schema", headers={"Accept": "application/vnd.oai.openapi+json"})
    assert response.status_code == 200
    return schemathesis.openapi.from_dict(json.loads(response.content))


def as_schemathesis_response(prepared: requests.PreparedRequest, response) -> schemathesis.Response:
    return schemathesis.Response(
        status_code=response.status_code,
        headers={name.lower(): [value] for name, value in response.headers.items()},
        content=response.content,
        request=prepared,
        elapsed=0.0,
        verify=False,
    )


def send_signed(client: Client, auth: HmacAuth, case) -> tuple[requests.PreparedRequest, object]:
    """Send the case exactly as `requests` would have, signed, through Django's test client."""
    kwargs = REQUESTS_TRANSPORT.serialize_case(case, base_url="http://testserver")
    prepared = requests.Request(**kwargs).prepare()
    auth(prepared)
    url = requests.utils.urlparse(prepared.url)
    body = prepared.body.encode() if isinstance(prepared.body, str) else (prepared.body or b"")
    headers = {k: v for k, v in prepared.headers.items() if k.lower() not in ("content-type", "content-length")}
    content_type = prepared.headers.get("Content-Type", "")
    target = url.path + (f"?{url.query}" if url.query else "")
    response = client.generic(prepared.method, target, data=body, content_type=content_type, headers=headers)
    return prepared, response


def test_schema_lists_every_contract_operation(schema):
    operations = {(op.method.upper(), op.path) for op in (r.ok() for r in schema.get_all_operations())}
    assert operations >= CONTRACT_OPERATIONS


def test_fuzz_every_operation_signed(schema, make_api_key, tmp_path):
    issued = make_api_key()
    auth = HmacAuth(issued.key_id, issued.secret)
    client = Client()
    real_wallets = [str(WalletFactory(provider=p).public_id) for p in ("fincra", "paystack", "flutterwave")]
    tried: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    server_errors: list[dict] = []
    failures: list[str] = []
    labels: set[str] = set()

    def runner(label: str, mode: schemathesis.GenerationMode, strategy):
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            derandomize=not os.environ.get("FUZZ_RANDOM"),  # CI: the same inputs every run
        )
        @given(case=strategy)
        def run(case) -> None:
            prepared, response = send_signed(client, auth, case)
            tried[label] += 1
            statuses[f"{label} {response.status_code}"] += 1
            if response.status_code >= 500:
                body = prepared.body.decode("utf-8", "replace") if isinstance(prepared.body, bytes) else prepared.body
                server_errors.append(
                    {
                        "operation": label,
                        "status": response.status_code,
                        "url": prepared.url,
                        "body": (body or "")[:2000],
                        "response": response.content[:500].decode("utf-8", "replace"),
                    }
                )
            try:
                case.validate_response(as_schemathesis_response(prepared, response), checks=CHECKS)
            except Exception as exc:  # collected, so one failure does not hide the others
                failures.append(f"{label} [{mode}]: {str(exc)[:1500]}")
                raise

        return run

    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        labels.add(label)
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)
            if "{wallet_id}" in operation.path:
                strategy = st.tuples(strategy, st.sampled_from([None, *real_wallets])).map(_with_wallet)
            # Hypothesis re-raises the shrunk failure; it is recorded above and asserted below.
            with contextlib.suppress(Exception, BaseExceptionGroup):  # FailureGroup is a BaseExceptionGroup
                runner(label, mode, strategy)()

    report = {
        "inputs_tried": sum(tried.values()),
        "per_operation": dict(tried),
        "statuses": dict(sorted(statuses.items())),
        "server_errors": server_errors,
        "failures": failures,
    }
    report_path = Path(os.environ.get("FUZZ_REPORT", tmp_path / "fuzz-report.json"))
    report_path.write_text(json.dumps(report, indent=2))
    print(f"fuzz: {report['inputs_tried']} inputs tried, {len(server_errors)} 5xx, report {report_path}")
    assert set(tried) == labels  # every operation in the schema ran
    assert server_errors == []
    assert failures == []
    assert all(count > 0 for count in tried.values())


def _with_wallet(pair):
    case, wallet_id = pair
    if wallet_id is not None and isinstance(case.path_parameters, dict) and "wallet_id" in case.path_parameters:
        case.path_parameters["wallet_id"] = wallet_id
    return case


# Inputs the fuzzer found, kept as regression tests.

FAR_OFFSET = "2026-11-20T14:02:18-22:31"  # valid RFC 3339; PostgreSQL refuses offsets beyond ±15:59


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/events/ingest", {"occurred_at": FAR_OFFSET}),
        ("POST", "/provider-balances", {"currency": "NGN", "available": "1.00", "reported_at": FAR_OFFSET}),
        ("GET", f"/balance?as_of={FAR_OFFSET}", None),
        ("GET", f"/events?occurred_after={FAR_OFFSET}", None),
    ],
)
def test_offsets_beyond_postgres_range_are_not_a_server_error(signed_client, wallet, method, path, body):
    if body and "occurred_at" in body:
        body = {"event_type": "deposit", "amount": "1.00", "currency": "NGN", "provider_event_id": "far", **body}
    response = signed_client.request(method, f"/api/v1/wallets/{wallet.public_id}{path}", body)
    assert response.status_code in (200, 201), response.content
