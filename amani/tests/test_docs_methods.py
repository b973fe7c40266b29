"""/api/v1/docs and /api/v1/schema answer other methods with the JSON 405 envelope (not HTML, not YAML)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/v1/docs", "/api/v1/schema", "/api/v1/schema?format=yaml"])
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_other_methods_get_the_405_envelope(client, path, method):
    response = getattr(client, method)(path, data=b"{}", content_type="application/json")
    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "error": {"code": "method_not_allowed", "message": f'Method "{method.upper()}" not allowed.'}
    }
    assert set(response["Allow"].split(", ")) >= {"GET", "HEAD"}


@pytest.mark.parametrize("path", ["/api/v1/docs", "/api/v1/schema"])
def test_get_still_serves_the_page_and_the_document(client, path):
    response = client.get(path)
    assert response.status_code == 200
    expected = "text/html" if path.endswith("docs") else "application/json"
    assert response["Content-Type"].startswith(expected)
