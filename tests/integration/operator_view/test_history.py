"""history() on the stack's PostgreSQL and S3: models as the lifecycle left them, and what each
sink serves, with the versions a rollback can go to."""

import uuid

import psycopg
import pytest

from movielens_recs import lifecycle
from mlrecs_devkit.stack import BUCKET
from movielens_recs.operator_view import history as history_
from movielens_recs.publish import sinks
from movielens_recs.publish.sinks import Namespace
from tests.integration.test_lifecycle import CONFIG, crowned, day, metrics, register
from tests.publish_fixtures import NOW, cold, recs


@pytest.fixture
def namespace(conn, stack):
    """The dataset "ml-x" of the `conn` fixture's schema; its namespace schema dropped at the end."""
    schema = conn.execute("SELECT current_schema()").fetchone()[0]
    ns = Namespace("ml-x", schema, f"tests/history-{uuid.uuid4().hex[:8]}")
    yield ns
    conn.execute(f"DROP SCHEMA IF EXISTS {ns.pg_schema} CASCADE")


def targets(stack, ns):
    pg = psycopg.connect(stack.postgres_dsn(), autocommit=True)
    pg.execute(f"CREATE SCHEMA IF NOT EXISTS {ns.pg_schema}")
    pg.execute(f"SET search_path TO {ns.pg_schema}")
    return pg, [sinks.PostgresSink(pg, ns.pg_schema), sinks.S3Sink(stack.s3_client(), BUCKET, ns.s3_prefix)]


def test_a_new_dataset_has_an_empty_history_and_reading_it_creates_nothing(conn, stack, namespace):
    h = history_.history(conn, stack.s3_client(), BUCKET, namespace, ["ml-x"])
    assert (h["models"], h["champion"], h["problems"]) == ([], None, [])
    assert [(s["sink"], s["serving"], s["kept"], s["rollback"]) for s in h["sinks"]] == [
        ("postgres", None, [], []), ("s3", None, [], [])]
    assert conn.execute("SELECT to_regnamespace(%s)", (namespace.pg_schema,)).fetchone()[0] is None
    conn.execute("DROP TABLE model_registry CASCADE")  # a pipeline that never ran: no registry at all
    assert history_.models(conn, "ml-x") == [] and history_.model(conn, "ml-x", "m-1") is None
    assert history_.datasets(conn, ["ml-100k"]) == ["ml-100k"]


def test_the_champion_the_rejected_model_and_the_rollback_targets(conn, stack, namespace):
    crowned(conn, "m-1", day(10))
    register(conn, "m-2", day(11))
    lifecycle.judge(conn, "m-2", metrics(), CONFIG)
    assert lifecycle.publish_and_crown(conn, "m-2", "m-1", lambda: []).status == "champion"
    register(conn, "m-3", day(12))
    assert lifecycle.judge(conn, "m-3", metrics(ndcg=0.2), CONFIG).status == "rejected"
    pg, both = targets(stack, namespace)
    with pg:
        for seed, version in enumerate(("m-1", "m-2"), start=1):
            sinks.publish(both, version, recs(5, seed), cold(seed), NOW)
        h = history_.history(conn, stack.s3_client(), BUCKET, namespace, ["ml-x"])
        assert h["champion"] == "m-2" and h["problems"] == []
        assert [(m["model_id"], m["status"]) for m in h["models"]] == [("m-3", "rejected"), ("m-2", "champion"),
                                                                       ("m-1", "retired")]
        rejected = h["models"][0]
        assert history_.model(conn, "ml-x", "m-3") == rejected and history_.model(conn, "ml-y", "m-3") is None
        assert history_.datasets(conn, ["ml-100k", "ml-x"]) == ["ml-100k", "ml-x"]
        assert history_.datasets(conn, ["ml-100k"]) == ["ml-100k", "ml-x"]
        assert rejected["figures"] == {"k": 10, "rmse": 0.859, "bias_rmse": 0.871, "ndcg_at_k": 0.2,
                                       "popularity_ndcg_at_k": 0.19, "coverage": 0.08}
        failed = {r["name"]: (r["value"], r["threshold"]) for r in rejected["gate"]["rules"] if not r["passed"]}
        assert failed == {"beats_popularity": (0.2, pytest.approx(0.19 * CONFIG.ndcg_multiple))}
        for sink in h["sinks"]:
            assert (sink["serving"], sink["kept"]) == ("m-2", ["m-2", "m-1"])
            assert sink["rollback"] == [{"version": "m-1", "command": "make rollback DATASET=ml-x VERSION=m-1"}]

        both[1].switch("m-1")  # S3 alone rolled back: a reader of S3 would notice
        h = history_.history(conn, stack.s3_client(), BUCKET, namespace, ["ml-x"])
        assert [s["serving"] for s in h["sinks"]] == ["m-2", "m-1"]
        assert h["problems"] == [f"s3 (s3://{BUCKET}/{namespace.s3_prefix}/recommendations/_manifest.json) serves "
                                 "m-1, not the champion m-2"]
