"""OpenAPI 3 at /api/v1/schema (valid, with the HMAC security scheme) and the offline docs page."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from drf_spectacular.validation import validate_schema


def fetch_schema() -> dict:
    response = Client().get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200, response.content[:500]
    return json.loads(response.content)


def test_schema_needs_no_credentials_and_is_valid_openapi_3(db):
    schema = fetch_schema()
    assert schema["openapi"].startswith("3.")
    validate_schema(schema)  # raises on an invalid document
    assert "/api/v1/schema" not in schema["paths"] and "/api/v1/docs" not in schema["paths"]
    # Every API operation is signed, except provider webhooks (signed by the provider: API.md).
    webhooks = schema["paths"].pop("/api/v1/webhooks/{provider}")
    assert webhooks["post"].get("security") in (None, [], [{}]), webhooks["post"].get("security")
    operations = [op for item in schema["paths"].values() for op in item.values() if isinstance(op, dict)]
    assert operations
    assert all(op.get("security") == [{"HmacSignature": []}] for op in operations), [
        op["operationId"] for op in operations if op.get("security") != [{"HmacSignature": []}]
    ]
    assert schema["components"]["securitySchemes"]["HmacSignature"]["type"] == "apiKey"


def test_schema_is_json_by_default(db):
    response = Client().get("/api/v1/schema")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert json.loads(response.content)["openapi"].startswith("3.")


@pytest.mark.parametrize("kwargs", [{"path": "/api/v1/schema?format=yaml"}, {"HTTP_ACCEPT": "application/yaml"}])
def test_schema_is_also_served_as_yaml(db, kwargs):
    response = Client().get(kwargs.pop("path", "/api/v1/schema"), **kwargs)
    assert response.status_code == 200
    assert response.content.startswith(b"openapi: 3.")


@pytest.mark.urls("amani.tests.urls")
def test_signed_endpoints_declare_the_hmac_security_scheme(db):
    schema = fetch_schema()
    validate_schema(schema)
    scheme = schema["components"]["securitySchemes"]["HmacSignature"]
    assert scheme["type"] == "apiKey"
    assert scheme["in"] == "header"
    assert scheme["name"] == "Authorization"
    for line in ("HMAC-SHA256", "<ts>", "<nonce>", "stale_timestamp", "replayed_nonce", "insufficient_scope"):
        assert line in scheme["description"]
    echo = schema["paths"]["/api/v1/test/echo"]
    assert echo["get"]["security"] == [{"HmacSignature": []}]


def test_docs_page_renders_offline_from_local_static_files(db):
    response = Client().get("/api/v1/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html.lower()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html
    assert "/api/v1/schema" in html


def test_docs_static_assets_are_served(db):
    response = Client().get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert response.status_code == 200


def test_every_operation_says_what_it_does_in_its_own_words(db):
    """A view without a summary would show ApiView's docstring (an implementation note) to callers."""
    for path, operations in fetch_schema()["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), f"{method.upper()} {path} has no summary"
            assert "required_scopes" not in operation.get("description", ""), f"{method.upper()} {path}"
