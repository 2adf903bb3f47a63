"""The recommendations API as apps call it: the real service (uvicorn, started by the stack) on
the real PostgreSQL, reading as the apps' read-only role."""

import json
import threading
import time
import urllib.error
import urllib.request
import uuid

import psycopg
import pytest

from movielens_recs.devstack import PG_READER
from movielens_recs.publish import sinks
from movielens_recs.publish.sinks import Namespace
from tests.conftest import LOOPBACK, listening_addresses
from tests.publish_fixtures import N, NOW, cold, recs, running

DATASET = "ml-api"


@pytest.fixture(scope="module")
def api(stack):
    """The API serving a pipeline schema of this module's own, with ml-api published as m-1."""
    schema = f"api_{uuid.uuid4().hex[:8]}"
    namespace = Namespace(DATASET, schema)
    conn = psycopg.connect(stack.postgres_dsn(), autocommit=True)
    conn.execute(f'CREATE SCHEMA "{namespace.pg_schema}"')
    conn.execute(f'SET search_path TO "{namespace.pg_schema}"')
    sink = [sinks.PostgresSink(conn, namespace.pg_schema, keep=5, reader_role=PG_READER)]
    stack.stop_api()
    stack.start_api({"MLRECS_DB_SCHEMA": schema, "MLRECS_SERVE_DATASETS": DATASET})
    try:
        assert get(stack, "/readyz")[0] == 503, "nothing is published yet"
        sinks.publish(sink, "m-1", with_predictions(recs(50, 1)), cold(1), NOW)
        yield stack, sink
    finally:
        stack.stop_api()
        conn.execute(f'DROP SCHEMA "{namespace.pg_schema}" CASCADE')
        conn.close()


def with_predictions(table):
    import pyarrow as pa

    table = table.append_column("predicted_rating", pa.array([4.5] * table.num_rows, pa.float32()))
    # a rule gave rank 2 of every list its place
    return table.append_column("promoted", pa.array([rank == 2 for rank in table.column("rank").to_pylist()]))


def get(stack, path, headers=None):
    request = urllib.request.Request(stack.api_url() + path, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
            return response.status, json.loads(body) if body else None, {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as error:
        body = error.read()
        return error.code, json.loads(body) if body else None, {k.lower(): v for k, v in error.headers.items()}


def expected_movies(user_id, seed):
    """The movie ids publish_fixtures.recs gives a user, in rank order."""
    return [(user_id * 7 + rank + seed) % 5000 for rank in range(1, N + 1)]


def test_a_users_list_with_its_version_and_etag(api):
    stack, _ = api
    status, body, headers = get(stack, f"/v1/{DATASET}/users/7/recommendations")
    assert status == 200 and headers["etag"] == '"m-1"'
    assert (body["dataset"], body["user_id"], body["model_version"], body["cold_start"]) == (DATASET, 7, "m-1", False)
    assert [i["movie_id"] for i in body["items"]] == expected_movies(7, 1)
    assert [i["rank"] for i in body["items"]] == list(range(1, N + 1))
    assert body["items"][0]["predicted_rating"] == 4.5 and body["generated_at"].startswith("2026-11-21")
    assert [i["promoted"] for i in body["items"][:3]] == [False, True, False]
    assert get(stack, f"/v1/{DATASET}/users/7/recommendations", {"If-None-Match": '"m-1"'})[0] == 304


def test_limit_offset_and_exclude(api):
    stack, _ = api
    movies = expected_movies(7, 1)
    _, page, _ = get(stack, f"/v1/{DATASET}/users/7/recommendations?limit=3&offset=2")
    assert [i["movie_id"] for i in page["items"]] == movies[2:5]
    _, kept, _ = get(stack, f"/v1/{DATASET}/users/7/recommendations?exclude={movies[0]},{movies[3]}")
    assert [i["movie_id"] for i in kept["items"]] == [m for m in movies if m not in (movies[0], movies[3])]


def test_an_unknown_user_gets_the_cold_start_list_marked_as_such(api):
    stack, _ = api
    status, body, _ = get(stack, f"/v1/{DATASET}/users/999999/recommendations?limit=4")
    assert status == 200 and body["cold_start"] is True and body["model_version"] == "m-1"
    assert [i["movie_id"] for i in body["items"]] == [100, 101, 102, 103]
    assert get(stack, f"/v1/{DATASET}/popular?limit=4")[1]["items"] == body["items"]


@pytest.mark.parametrize("path", [
    "/v1/no-such-dataset/users/1/recommendations", "/v1/no-such-dataset/popular", "/v1/ml-latest-small;drop/popular"])
def test_an_unknown_dataset_is_a_404(api, path):
    status, body, _ = get(api[0], path)
    assert status == 404 and "dataset" in body["detail"]


@pytest.mark.parametrize("query, names", [
    ("users/0/recommendations", "user_id"), ("users/abc/recommendations", "user_id"),
    ("users/1/recommendations?limit=0", "limit"), ("users/1/recommendations?limit=1000", "limit"),
    ("users/1/recommendations?offset=-1", "offset"), ("users/1/recommendations?exclude=1,x", "exclude"),
    ("popular?limit=101", "limit")])
def test_bad_parameters_are_a_422_that_names_them(api, query, names):
    status, body, _ = get(api[0], f"/v1/{DATASET}/{query}")
    assert status == 422 and names in json.dumps(body["detail"])


def test_health_readiness_and_docs(api):
    stack, _ = api
    assert get(stack, "/healthz")[:2] == (200, {"status": "ok"})
    assert get(stack, "/readyz")[:2] == (200, {"ready": True, "datasets": [DATASET], "not_published": []})
    assert "/v1/{dataset}/users/{user_id}/recommendations" in get(stack, "/openapi.json")[1]["paths"]
    with urllib.request.urlopen(stack.api_url() + "/docs", timeout=10) as docs:
        assert docs.status == 200
    for address in listening_addresses(stack.running_pid("api", "movielens_recs.serving.api")):
        assert address.split(":")[0] in LOOPBACK


def test_no_response_mixes_versions_while_publishes_and_a_rollback_switch(api):
    stack, sink = api
    stop, bad, answered = threading.Event(), [], []

    def reader(user_id):
        while not stop.is_set():
            try:
                status, body, _ = get(stack, f"/v1/{DATASET}/users/{user_id}/recommendations")
                seed = int(body["model_version"].split("-")[1]) if status == 200 else None
                if status != 200 or [i["movie_id"] for i in body["items"]] != expected_movies(user_id, seed):
                    bad.append((status, body))
                answered.append(body["model_version"] if status == 200 else None)
            except Exception as exc:  # an error page, a dropped connection: each is a failure
                bad.append(repr(exc))

    with running(stop, *[lambda user_id=user_id: reader(user_id) for user_id in (3, 17, 42, 50)]):
        time.sleep(0.3)
        for seed in (2, 3):
            sinks.publish(sink, f"m-{seed}", with_predictions(recs(50, seed)), cold(seed), NOW)
            time.sleep(0.3)
        sinks.rollback(sink)
        time.sleep(0.3)
    assert bad == []
    assert {"m-1", "m-2", "m-3"} <= set(answered), "the readers saw every switch"
    assert get(stack, f"/v1/{DATASET}/users/3/recommendations")[1]["model_version"] == "m-2"
