"""The publish task's body (orchestration/publishing.publish) with Airflow's connections, on the
stack's real stores: when S3 refuses the write after PostgreSQL has switched, the task fails,
the registry and what readers see are as they were; its rerun serves both sinks and crowns."""

import json
import uuid
from datetime import datetime, timezone

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from movielens_recs import lifecycle, registry
from movielens_recs.datasets.readers import MOVIES_SCHEMA, RATINGS_SCHEMA
from movielens_recs.lake.snapshot import SnapshotStore
from mlrecs_devkit.stack import BUCKET
from movielens_recs.gate import GateConfig
from movielens_recs.lake.filesystem import write_json
from movielens_recs.publish import s3, sinks
from movielens_recs.publish.sinks import Namespace
from movielens_recs.recommend.output import MARKER
from movielens_recs.registry import ModelRecord
from tests.integration.test_lifecycle import metrics
from tests.publish_fixtures import cold, recs

DATASET = "ml-task"


@pytest.fixture
def task_env(stack, stack_env, monkeypatch, tmp_path):
    """The task's environment: the stack's connections, a schema, prefix and lake of its own."""
    schema = f"task_{uuid.uuid4().hex[:8]}"
    env = {**stack_env, "MLRECS_DB_SCHEMA": schema, "MLRECS_S3_PREFIX": f"tests/{schema}",
           "MLRECS_LAKE_URI": str(tmp_path / "lake")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield env
    with psycopg.connect(stack.postgres_dsn(), autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema}, {Namespace(DATASET, schema).pg_schema} CASCADE")


def prepared_model(stack, env, tmp_path, model_id: str, day: int, seed: int) -> dict:
    """A registered, approved model with validated recommendations in its store, as the DAG
    leaves it before publish."""
    uri = str(tmp_path / "models" / model_id)
    for name, table in (("recommendations", recs(20, seed)), ("cold_start", cold(seed))):
        folder = tmp_path / "models" / model_id / "recommendations" / name
        folder.mkdir(parents=True)
        pq.write_table(table, folder / "part-0.parquet")
    write_json(f"{uri}/recommendations/{MARKER}", {"rows": 200, "cold_rows": 10,
                                                   "generated_at": datetime(2026, 11, day, tzinfo=timezone.utc).isoformat()})
    store = SnapshotStore(env["MLRECS_LAKE_URI"])
    if store.manifest(DATASET, "snap") is None:  # the catalog the events tables take
        ratings = pa.RecordBatch.from_pylist([], schema=RATINGS_SCHEMA)
        store.write(DATASET, "snap", [ratings], pa.table({"movie_id": pa.array(range(5000), pa.int32()),
                                                          "title": [f"m{i}" for i in range(5000)],
                                                          "genres": ["Drama"] * 5000}, schema=MOVIES_SCHEMA), {})
    with psycopg.connect(stack.postgres_dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {env['MLRECS_DB_SCHEMA']}")
        conn.execute(f"SET search_path TO {env['MLRECS_DB_SCHEMA']}")
        registered = lifecycle.register(conn, ModelRecord(model_id, DATASET, "snap", uri, {},
                                                          cutoff=datetime(2018, 6, day, tzinfo=timezone.utc)))
        champion = registered.details["champion"]
        assert lifecycle.judge(conn, model_id, metrics(), GateConfig.for_dataset("ml-latest-small")).status == "approved"
    return {"model_id": model_id, "model_uri": uri, "dataset": DATASET, "snapshot_id": "snap",
            "champion_id": champion["model_id"] if champion else ""}


def state(stack, env):
    ns = Namespace(DATASET, env["MLRECS_DB_SCHEMA"], env["MLRECS_S3_PREFIX"])
    with psycopg.connect(stack.postgres_dsn(), autocommit=True) as conn:
        conn.execute(f"SET search_path TO {env['MLRECS_DB_SCHEMA']}")
        champion = registry.champion(conn, DATASET)
        conn.execute(f"SET search_path TO {ns.pg_schema}")
        served = conn.execute("SELECT DISTINCT model_version FROM recommendations").fetchall()
    manifest = s3.current_manifest(stack.s3_client(), BUCKET, ns.s3_prefix)
    return champion["model_id"] if champion else None, [r[0] for r in served], manifest and manifest["model_version"]


def test_a_publish_cut_short_by_s3_changes_nothing_and_its_rerun_finishes(stack, task_env, tmp_path, monkeypatch):
    from movielens_recs.orchestration import publishing

    publishing.publish(prepared_model(stack, task_env, tmp_path, "a", 1, 1), {}, {})
    assert state(stack, task_env) == ("a", ["a"], "a")

    b = prepared_model(stack, task_env, tmp_path, "b", 2, 2)
    # the task's S3 connection becomes the apps' read-only identity: the store refuses the write
    reader = json.loads(task_env["AIRFLOW_CONN_AWS_RECS_READER"])
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(reader))
    with pytest.raises(sinks.SinkError, match=r"s3 .* failed at b: .*AccessDenied.*postgres switched back to a"):
        publishing.publish(b, {}, {})
    assert state(stack, task_env) == ("a", ["a"], "a")

    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", task_env["AIRFLOW_CONN_AWS_DEFAULT"])
    done = publishing.publish(b, {}, {})
    assert (done["champion"], done["retired"]) == ("b", "a")
    assert state(stack, task_env) == ("b", ["b"], "b")


def test_a_namespace_published_before_rating_events_gets_them_from_the_first_fold_in(stack, task_env, tmp_path):
    """The upgrade path: a served namespace without events tables, whose reader grants are gone,
    is made ready by the fold-in task itself; a rating can then be recorded and read back."""
    from mlrecs_devkit.stack import PG_READER, PG_WRITER
    from movielens_recs.foldin import events
    from movielens_recs.orchestration import folding, publishing

    publishing.publish(prepared_model(stack, task_env, tmp_path, "a", 1, 1), {"sinks": ["postgres"]}, {})
    schema = Namespace(DATASET, task_env["MLRECS_DB_SCHEMA"]).pg_schema
    with psycopg.connect(stack.postgres_dsn(), autocommit=True) as conn:
        conn.execute(f'DROP TABLE "{schema}".rating_events, "{schema}".movies, "{schema}".rating_scale, '
                     f'"{schema}".fold_in_state')
        conn.execute(f'REVOKE ALL ON ALL TABLES IN SCHEMA "{schema}" FROM {PG_READER}')
    with psycopg.connect(stack.postgres_dsn(role=PG_READER), autocommit=True) as reader:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute(f'SELECT 1 FROM "{schema}".recommendations')

    result = folding.fold_in(DATASET)
    assert (result["model_version"], result["status"]) == ("a", "up to date")
    with psycopg.connect(stack.postgres_dsn(role=PG_WRITER), autocommit=True) as writer:
        events.record(writer, schema, {"key": "k", "user_id": 1, "movie_id": 7, "rating": 4.0,
                                       "rated_at": datetime.now(timezone.utc)})
    with psycopg.connect(stack.postgres_dsn(role=PG_READER), autocommit=True) as reader:
        assert reader.execute(f'SELECT count(*) FROM "{schema}".recommendations').fetchone()[0] == 200
