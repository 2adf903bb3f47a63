"""The recommendations API as apps call it: the real service (uvicorn, started by the stack) on
the real PostgreSQL, reading as the apps' read-only role."""

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone

import psycopg
import pyarrow as pa
import pytest

from movielens_recs.datasets.catalog import WHOLE_STARS
from mlrecs_devkit.stack import PG_READER, PG_WRITER
from movielens_recs.foldin import events
from movielens_recs.publish import postgres as pg_publish
from movielens_recs.publish import sinks
from movielens_recs.publish.sinks import Namespace
from tests.api_client import get
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
        catalog = pa.table({"movie_id": pa.array(range(1, 5001), pa.int32()), "title": [f"m{i}" for i in range(1, 5001)],
                            "genres": ["Drama"] * 5000})
        events.prepare(conn, catalog, WHOLE_STARS, PG_WRITER, PG_READER)
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


def post_rating(stack, dataset, user_id, **event):
    return get(stack, f"/v1/{dataset}/users/{user_id}/ratings", body=event)[:2]


def stored_events(sink):
    return sink[0].conn.execute("SELECT idempotency_key, user_id, movie_id, rating FROM rating_events "
                                "ORDER BY event_id").fetchall()


def test_ratings_are_recorded_once_and_bad_ones_refused_with_their_reason(api):
    stack, sink = api
    status, body = post_rating(stack, DATASET, 7, movie_id=12, rating=4, idempotency_key="app-1")
    assert status == 201 and (body["status"], body["user_id"], body["movie_id"], body["rating"]) == ("recorded", 7, 12, 4)
    assert stored_events(sink) == [("app-1", 7, 12, 4.0)]
    future = (datetime.now(timezone.utc) + timedelta(hours=2)).isoformat()
    refused = [
        ({"movie_id": 12, "rating": 4, "idempotency_key": "app-1"}, 409, "idempotency key 'app-1' was already used"),
        ({"movie_id": 5001, "rating": 4, "idempotency_key": "app-2"}, 422, "movie 5001 is not in the dataset's catalog"),
        # ml-api is on whole stars
        ({"movie_id": 12, "rating": 4.5, "idempotency_key": "app-3"}, 422, "rating 4.5 is off the dataset's scale (1, 2, 3, 4, 5)"),
        ({"movie_id": 12, "rating": 0, "idempotency_key": "app-4"}, 422, "rating 0.0 is off the dataset's scale"),
        ({"movie_id": 12, "rating": 4, "rated_at": future, "idempotency_key": "app-5"}, 422, "is in the future"),
        ({"movie_id": 12, "rating": 4, "rated_at": "2026-11-01T10:00:00", "idempotency_key": "app-6"}, 422,
         "timezone"),  # a time without its zone is ambiguous
        ({"movie_id": 12, "rating": 4}, 422, "idempotency_key"),
    ]
    for event, status, reason in refused:
        got = post_rating(stack, DATASET, 7, **event)
        assert got[0] == status and reason in json.dumps(got[1]["detail"]), (event, got)
    for dataset in ("ml-nothing-published", "..", "no%20such"):
        got = post_rating(stack, dataset, 7, movie_id=12, rating=4, idempotency_key="app-7")
        assert got[0] == 404, (dataset, got)
    assert stored_events(sink) == [("app-1", 7, 12, 4.0)], "nothing refused was stored"


def test_a_folded_in_users_list_carries_its_fold_in_and_a_new_etag(api):
    stack, sink = api
    conn = sink[0].conn
    version = pg_publish.current_version(conn)
    _, before, headers = get(stack, f"/v1/{DATASET}/users/8/recommendations")
    assert before["fold_in_seq"] is None and headers["etag"] == f'"{version}"'
    folded = pa.table({"user_id": pa.array([8] * 3, pa.int32()), "rank": pa.array([1, 2, 3], pa.int16()),
                       "movie_id": pa.array([11, 12, 13], pa.int32()), "title": ["a", "b", "c"],
                       "score": pa.array([3.0, 2.0, 1.0], pa.float32()), "predicted_rating": pa.array([4.0] * 3, pa.float32()),
                       "promoted": [False] * 3})
    with conn.transaction():
        pg_publish.replace_users(conn, version, folded, 1, NOW)
    status, body, headers = get(stack, f"/v1/{DATASET}/users/8/recommendations", {"If-None-Match": f'"{version}"'})
    assert status == 200 and headers["etag"] == f'"{version}+1"'
    assert (body["model_version"], body["fold_in_seq"], [i["movie_id"] for i in body["items"]]) == (version, 1, [11, 12, 13])
    assert get(stack, f"/v1/{DATASET}/users/9/recommendations")[1]["fold_in_seq"] is None
