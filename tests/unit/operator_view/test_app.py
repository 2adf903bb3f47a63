"""The plugin's routes refuse a request without a signed-in Airflow user before doing anything."""

import pytest
from fastapi.testclient import TestClient

from movielens_recs.config import Settings
from movielens_recs.operator_view.app import create_app


@pytest.mark.parametrize("path", ["/api/datasets/ml-latest-small/history", "/datasets/ml-latest-small",
                                  "/datasets/ml-latest-small/models/m-1/report", "/"])
def test_every_route_refuses_an_unauthenticated_request(path):
    # the settings point nowhere: a route that reached the database would fail differently
    client = TestClient(create_app(Settings.from_env({"MLRECS_DB_SCHEMA": "nowhere"})))
    response = client.get(path, follow_redirects=False)
    assert (response.status_code, response.json()) == (401, {"detail": "Not authenticated"})


def test_the_json_endpoint_is_documented_in_the_apps_openapi_schema():
    """Served at /mlrecs/openapi.json (and /mlrecs/docs), like Airflow's own: it holds no data."""
    schema = TestClient(create_app(Settings.from_env({}))).get("/openapi.json")
    assert schema.status_code == 200
    history = schema.json()["paths"]["/api/datasets/{dataset}/history"]["get"]
    assert history["summary"] == "One dataset's models, gate decisions and served versions"
