"""The API's reads do not depend on the writer role: with a writer it cannot log in as (a database
made before the role existed), lists are served and recording a rating is a clear 503."""

import uuid

import psycopg
import pytest

from mlrecs_devkit.stack import PG_READER, PG_WRITER
from movielens_recs.publish import sinks
from movielens_recs.publish.sinks import Namespace
from tests.api_client import get
from tests.publish_fixtures import NOW, cold, recs

DATASET = "ml-api-writer"


@pytest.fixture
def api_without_writer(stack):
    schema = f"apiw_{uuid.uuid4().hex[:8]}"
    namespace = Namespace(DATASET, schema)
    with psycopg.connect(stack.postgres_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{namespace.pg_schema}"')
        conn.execute(f'SET search_path TO "{namespace.pg_schema}"')
        sinks.publish([sinks.PostgresSink(conn, namespace.pg_schema, reader_role=PG_READER)], "m-1", recs(5, 1), cold(1), NOW)
    wrong = stack.postgres_dsn(role=PG_WRITER).replace(stack.writer_password(), "not-the-password")
    stack.stop_api()
    stack.start_api({"MLRECS_DB_SCHEMA": schema, "MLRECS_SERVE_DATASETS": DATASET, "MLRECS_WRITER_DATABASE_URL": wrong})
    try:
        yield stack
    finally:
        stack.stop_api()
        with psycopg.connect(stack.postgres_dsn(), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{namespace.pg_schema}" CASCADE')


def test_lists_are_served_and_a_rating_is_a_503_naming_the_writer(api_without_writer):
    stack = api_without_writer
    status, body, _ = get(stack, f"/v1/{DATASET}/users/3/recommendations")
    assert status == 200 and body["model_version"] == "m-1"
    status, body, _ = get(stack, f"/v1/{DATASET}/users/3/ratings", body={"movie_id": 1, "rating": 4, "idempotency_key": "k"})
    assert status == 503 and "writer role" in body["detail"]
