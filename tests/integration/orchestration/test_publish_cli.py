"""The rollback command an on-call engineer runs, against the stack's PostgreSQL and S3."""

import subprocess
import sys
import uuid

import psycopg
import pytest

from movielens_recs.config import DEFAULT_DATASET
from mlrecs_devkit.stack import BUCKET
from movielens_recs.publish import postgres as pg
from movielens_recs.publish import s3
from movielens_recs.publish.sinks import Namespace
from tests.publish_fixtures import NOW, cold, recs


@pytest.fixture
def env(stack, stack_env):
    schema, prefix = f"cli_{uuid.uuid4().hex[:8]}", f"tests/cli-{uuid.uuid4().hex[:8]}"
    yield {**stack_env, "MLRECS_DB_SCHEMA": schema, "MLRECS_S3_PREFIX": prefix}
    with psycopg.connect(stack.postgres_dsn(), autocommit=True) as conn:
        for dataset in (DEFAULT_DATASET, "ml-x"):
            conn.execute(f"DROP SCHEMA IF EXISTS {schema}, {Namespace(dataset, schema).pg_schema} CASCADE")


def namespace(env, dataset=DEFAULT_DATASET):
    return Namespace(dataset, env["MLRECS_DB_SCHEMA"], env["MLRECS_S3_PREFIX"])


def cli(env, *args):
    return subprocess.run([sys.executable, "-m", "movielens_recs.orchestration.publish_cli", *args],
                          env=env, capture_output=True, text=True, timeout=120)


def served(stack, env, dataset=DEFAULT_DATASET, schema=None):
    ns = namespace(env, dataset)
    with psycopg.connect(stack.postgres_dsn(), autocommit=True) as conn:
        conn.execute(f"SET search_path TO {schema or ns.pg_schema}")
        pg_version = conn.execute("SELECT DISTINCT model_version FROM recommendations").fetchall()
    manifest = s3.current_manifest(stack.s3_client(), BUCKET, ns.s3_prefix)
    return [r[0] for r in pg_version], manifest["model_version"] if manifest else None


def publish_to(stack, schema, prefix, seeds):
    with psycopg.connect(stack.postgres_dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        conn.execute(f"SET search_path TO {schema}")
        for seed in seeds:
            pg.publish(conn, recs(20, seed), cold(seed), f"m-{seed}", NOW)
            s3.publish(stack.s3_client(), BUCKET, prefix, f"m-{seed}", recs(20, seed), cold(seed))


def test_rollback_serves_the_previous_version_in_both_sinks(stack, env):
    publish_to(stack, namespace(env).pg_schema, namespace(env).s3_prefix, (1, 2))
    assert served(stack, env) == (["m-2"], "m-2")

    done = cli(env, "rollback")
    assert done.returncode == 0, done.stderr
    assert "now serves m-1" in done.stdout and served(stack, env) == (["m-1"], "m-1")

    status = cli(env, "status")
    assert status.returncode == 0, status.stderr
    assert "serving m-1" in status.stdout and "kept m-2" in status.stdout

    done = cli(env, "rollback", "--to", "m-2", "--sinks", "s3")
    assert done.returncode == 0, done.stderr
    assert served(stack, env) == (["m-1"], "m-2")
    # a monitor running `make published` hears of the split
    status = cli(env, "status")
    assert status.returncode == 2 and "WARNING: the sinks serve different versions: postgres m-1, s3 m-2" in status.stdout


def test_rollback_with_nothing_to_go_back_to_says_so(stack, env):
    refused = cli(env, "rollback", "--sinks", "postgres")
    assert refused.returncode != 0
    assert "no earlier version is kept to roll back to" in refused.stderr


def test_an_install_from_before_namespaces_keeps_serving_under_its_dataset(stack, env):
    """The old layout: one set in the pipeline's schema and under <prefix>/recommendations/."""
    publish_to(stack, env["MLRECS_DB_SCHEMA"], env["MLRECS_S3_PREFIX"], (1, 2))
    moved = cli(env, "migrate", "--dataset", "ml-x")
    assert moved.returncode == 0, moved.stderr
    assert served(stack, env, "ml-x") == (["m-2"], "m-2")
    # apps still on the old view keep reading the same set until they move
    assert served(stack, env, "ml-x", schema=env["MLRECS_DB_SCHEMA"])[0] == ["m-2"]
    shown = cli(env, "status", "--dataset", "ml-x")
    assert "serving m-2" in shown.stdout and "kept m-1" in shown.stdout
    back = cli(env, "rollback", "--dataset", "ml-x")
    assert back.returncode == 0, back.stderr
    assert served(stack, env, "ml-x") == (["m-1"], "m-1")
    # a second migration changes nothing that was done since
    again = cli(env, "migrate", "--dataset", "ml-x")
    assert again.returncode == 0 and served(stack, env, "ml-x") == (["m-1"], "m-1")
