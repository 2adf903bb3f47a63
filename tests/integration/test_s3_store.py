"""The stack's S3 store (SeaweedFS): its identities enforce least privilege, and what it serves
survives `make down` and `make up`."""

import json
import subprocess
import sys
import uuid
from datetime import datetime, timezone

import boto3
import botocore.exceptions
import psycopg
import pytest

from movielens_recs import lifecycle, registry
from mlrecs_devkit.stack import BUCKET
from movielens_recs.gate import GateConfig
from movielens_recs.publish import s3, sinks
from movielens_recs.publish.sinks import Namespace
from movielens_recs.registry import ModelRecord
from tests.integration.test_lifecycle import metrics
from tests.publish_fixtures import NOW, cold, recs


@pytest.fixture
def prefix():
    return f"tests/store-{uuid.uuid4().hex[:8]}"


def denied(call) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        call()
    return refused.value.response["Error"]["Code"]


def reader_from_connection(stack):
    """The apps' client, built only from what the stack hands apps: the Airflow connection."""
    conn = json.loads(stack.environment()["AIRFLOW_CONN_AWS_RECS_READER"])
    return boto3.client("s3", endpoint_url=conn["extra"]["endpoint_url"], region_name=conn["extra"]["region_name"],
                        aws_access_key_id=conn["login"], aws_secret_access_key=conn["password"])


def test_identities_are_generated_once_and_kept_private(stack):
    cfg = json.loads(stack.config_file.read_text())
    keys = cfg["s3_identities"]
    assert set(keys) == {"admin", "pipeline", "reader"}
    assert len({k for pair in keys.values() for k in pair}) == 6, "every key and secret differs"
    assert stack.config_file.stat().st_mode & 0o077 == 0
    assert (stack.state / "s3" / "identities.json").stat().st_mode & 0o077 == 0
    env = stack.environment()
    assert (env["AWS_ACCESS_KEY_ID"], env["MLRECS_READER_AWS_ACCESS_KEY_ID"]) == (keys["pipeline"][0], keys["reader"][0])


def test_apps_read_and_list_published_recommendations_and_nothing_else(stack, prefix):
    pipeline, reader = stack.s3_client("pipeline"), reader_from_connection(stack)
    manifest = s3.publish(pipeline, BUCKET, prefix, "m-1", recs(10, 1), cold(1))
    # elsewhere in the bucket: what a lake or model store would hold if someone put one there
    for key in (f"{prefix}/lake/ratings.parquet", f"{prefix}/models/m-1/model.json", "models/m-1/model.json"):
        pipeline.put_object(Bucket=BUCKET, Key=key, Body=b"private")

    assert s3.current_manifest(reader, BUCKET, prefix) == manifest
    table, cold_start = s3.read(reader, BUCKET, manifest)
    assert (table.num_rows, cold_start.num_rows) == (100, 10)
    assert [m["model_version"] for m in s3.versions(reader, BUCKET, prefix)] == ["m-1"]

    key = manifest["files"][0]["key"]
    assert denied(lambda: reader.put_object(Bucket=BUCKET, Key=s3.manifest_key(prefix), Body=b"{}")) == "AccessDenied"
    assert denied(lambda: reader.put_object(Bucket=BUCKET, Key=f"{prefix}/recommendations/new", Body=b"x")) == "AccessDenied"
    assert denied(lambda: reader.delete_object(Bucket=BUCKET, Key=s3.manifest_key(prefix))) == "AccessDenied"
    assert denied(lambda: reader.delete_object(Bucket=BUCKET, Key=key)) == "AccessDenied"
    assert denied(lambda: reader.copy_object(Bucket=BUCKET, Key=s3.manifest_key(prefix),
                                             CopySource={"Bucket": BUCKET, "Key": key})) == "AccessDenied"
    assert denied(lambda: reader.create_bucket(Bucket=f"apps-{uuid.uuid4().hex[:6]}")) == "AccessDenied"
    for private in (f"{prefix}/lake/ratings.parquet", f"{prefix}/models/m-1/model.json", "models/m-1/model.json"):
        assert denied(lambda: reader.get_object(Bucket=BUCKET, Key=private)) == "AccessDenied"
    assert denied(lambda: reader.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/")) == "AccessDenied"
    assert denied(lambda: reader.list_objects_v2(Bucket=BUCKET)) == "AccessDenied"
    # what was there is untouched
    assert s3.current_manifest(pipeline, BUCKET, prefix) == manifest and s3.read(pipeline, BUCKET, manifest)
    # a wrong secret is no identity at all
    wrong = boto3.client("s3", endpoint_url=stack.s3_endpoint(), region_name="us-east-1",
                         aws_access_key_id=stack.s3_keys("reader")[0], aws_secret_access_key="wrong")
    assert denied(lambda: wrong.get_object(Bucket=BUCKET, Key=s3.manifest_key(prefix))) == "SignatureDoesNotMatch"


def test_every_sink_serves_the_champion_after_down_and_up(stack, stack_env, prefix):
    """`make down && make up && make published`: both sinks still serve the champion's rows."""
    schema = f"store_{uuid.uuid4().hex[:8]}"
    ns = Namespace("ml-x", schema, prefix)
    with psycopg.connect(stack.postgres_dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"SET search_path TO {schema}")
        registry.ensure_schema(conn)
        lifecycle.register(conn, ModelRecord("m-1", "ml-x", "snap", "file:///m/m-1", {},
                                             cutoff=datetime(2018, 6, 1, tzinfo=timezone.utc)))
        lifecycle.judge(conn, "m-1", metrics(), GateConfig.for_dataset("ml-latest-small"))
        with psycopg.connect(stack.postgres_dsn(), autocommit=True) as ns_conn:
            ns_conn.execute(f"CREATE SCHEMA {ns.pg_schema}")
            ns_conn.execute(f"SET search_path TO {ns.pg_schema}")
            targets = [sinks.PostgresSink(ns_conn, ns.pg_schema), sinks.S3Sink(stack.s3_client(), BUCKET, ns.s3_prefix)]
            lifecycle.publish_and_crown(conn, "m-1", None,
                                        lambda: sinks.publish(targets, "m-1", recs(30, 1), cold(1), NOW))
            before = ns_conn.execute("SELECT * FROM recommendations ORDER BY user_id, rank").fetchall()
    s3_before = s3.read(stack.s3_client(), BUCKET, s3.current_manifest(stack.s3_client(), BUCKET, ns.s3_prefix))[0]

    stopped = stack.down()
    assert {"s3", "postgres"} <= set(stopped) and not any(stack.status().values())
    stack.up(airflow=False)

    env = {**stack_env, "MLRECS_DB_SCHEMA": schema, "MLRECS_S3_PREFIX": prefix}
    shown = subprocess.run([sys.executable, "-m", "movielens_recs.orchestration.publish_cli", "status",
                            "--dataset", "ml-x"], env=env, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "postgres " in shown.stdout and shown.stdout.count(": serving m-1") == 2 and "WARNING" not in shown.stdout
    with psycopg.connect(stack.postgres_dsn(), autocommit=True) as conn:
        conn.execute(f"SET search_path TO {ns.pg_schema}")
        assert conn.execute("SELECT * FROM recommendations ORDER BY user_id, rank").fetchall() == before
        conn.execute(f"DROP SCHEMA {schema}, {ns.pg_schema} CASCADE")
    assert s3.read(stack.s3_client(), BUCKET, s3.current_manifest(stack.s3_client(), BUCKET, ns.s3_prefix))[0].equals(s3_before)


def test_what_the_tests_write_to_s3_is_removed_and_nothing_else(stack, prefix):
    from tests.conftest import remove_test_objects

    client = stack.s3_client()
    client.put_object(Bucket=BUCKET, Key=f"{prefix}/recommendations/x", Body=b"x")
    client.put_object(Bucket=BUCKET, Key="kept-by-the-tests/x", Body=b"x")
    try:
        assert remove_test_objects(stack) >= 1
        assert client.list_objects_v2(Bucket=BUCKET, Prefix="tests/").get("KeyCount") == 0
        assert client.get_object(Bucket=BUCKET, Key="kept-by-the-tests/x")["Body"].read() == b"x"
    finally:
        client.delete_object(Bucket=BUCKET, Key="kept-by-the-tests/x")
