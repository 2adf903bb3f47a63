"""The rollback command an on-call engineer runs, against the stack's PostgreSQL and S3."""

import subprocess
import sys
import uuid

import psycopg
import pytest

from movielens_recs.devstack import BUCKET
from movielens_recs.publish import postgres as pg
from movielens_recs.publish import s3
from tests.publish_fixtures import NOW, cold, recs


@pytest.fixture
def env(stack, stack_env):
    schema, prefix = f"cli_{uuid.uuid4().hex[:8]}", f"tests/cli-{uuid.uuid4().hex[:8]}"
    yield {**stack_env, "MLRECS_DB_SCHEMA": schema, "MLRECS_S3_PREFIX": prefix}
    with psycopg.connect(stack.postgres_dsn(), autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def cli(env, *args):
    return subprocess.run([sys.executable, "-m", "movielens_recs.orchestration.publish_cli", *args],
                          env=env, capture_output=True, text=True, timeout=120)


def served(stack, env):
    with psycopg.connect(stack.postgres_dsn(), autocommit=True) as conn:
        conn.execute(f"SET search_path TO {env['MLRECS_DB_SCHEMA']}")
        pg_version = conn.execute("SELECT DISTINCT model_version FROM recommendations").fetchall()
    manifest = s3.current_manifest(stack.s3_client(), BUCKET, env["MLRECS_S3_PREFIX"])
    return [r[0] for r in pg_version], manifest["model_version"]


def test_rollback_serves_the_previous_version_in_both_sinks(stack, env):
    with psycopg.connect(stack.postgres_dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {env['MLRECS_DB_SCHEMA']}")
        conn.execute(f"SET search_path TO {env['MLRECS_DB_SCHEMA']}")
        for seed in (1, 2):
            pg.publish(conn, recs(20, seed), cold(seed), f"m-{seed}", NOW)
            s3.publish(stack.s3_client(), BUCKET, env["MLRECS_S3_PREFIX"], f"m-{seed}", recs(20, seed), cold(seed))
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
