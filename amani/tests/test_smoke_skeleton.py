def test_unknown_api_path_is_404_envelope(signed_client):
    response = signed_client.get("/api/v1/nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_missing_credentials(client, db):
    response = client.get("/api/v1/nope")
    assert response.status_code == 404
