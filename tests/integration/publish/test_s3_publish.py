"""Publishing to the real S3 store of the local stack (SeaweedFS)."""

import uuid

import pytest

from mlrecs_devkit.stack import BUCKET
from movielens_recs.publish import s3
from tests.publish_fixtures import cold, recs


@pytest.fixture
def client(stack):
    return stack.s3_client()


@pytest.fixture
def prefix():
    return f"tests/{uuid.uuid4().hex[:8]}"


def puts(client):
    keys = []
    client.meta.events.register("before-parameter-build.s3.PutObject", lambda params, **_: keys.append(params["Key"]))
    return keys


def test_manifest_is_written_last_and_its_checksums_match(client, prefix):
    order = puts(client)
    manifest = s3.publish(client, BUCKET, prefix, "m-1", recs(30, 1), cold(1))
    assert order[-1] == s3.manifest_key(prefix), "the manifest must be the last object written"
    assert set(order[:-1]) >= {f["key"] for f in manifest["files"]}
    current = s3.current_manifest(client, BUCKET, prefix)
    assert current == manifest and current["row_count"] == 300
    table, cold_start = s3.read(client, BUCKET, current)  # verifies each SHA-256
    assert table.num_rows == 300 and cold_start.num_rows == 10
    for entry in manifest["files"]:
        head = client.head_object(Bucket=BUCKET, Key=entry["key"])
        assert head["ContentLength"] == entry["bytes"]


def test_a_failed_upload_leaves_the_previous_version_served(client, prefix):
    s3.publish(client, BUCKET, prefix, "m-1", recs(30, 1), cold(1))
    calls = []

    def fail_second_file(params, **_):
        calls.append(params["Key"])
        if len(calls) == 2:
            raise ConnectionError("injected: upload cut")

    client.meta.events.register("before-parameter-build.s3.PutObject", fail_second_file)
    with pytest.raises(ConnectionError, match="injected"):
        s3.publish(client, BUCKET, prefix, "m-2", recs(30, 2), cold(2))
    client.meta.events.unregister("before-parameter-build.s3.PutObject", fail_second_file)
    assert s3.current_manifest(client, BUCKET, prefix)["model_version"] == "m-1"
    # the cut upload has no manifest, so it is no version anybody can serve or roll back to
    assert [m["model_version"] for m in s3.versions(client, BUCKET, prefix)] == ["m-1"]
    table, _ = s3.read(client, BUCKET, s3.current_manifest(client, BUCKET, prefix))
    assert table.num_rows == 300


def test_tampered_file_is_detected_by_the_reader(client, prefix):
    manifest = s3.publish(client, BUCKET, prefix, "m-1", recs(5, 1), cold(1))
    client.put_object(Bucket=BUCKET, Key=manifest["files"][0]["key"], Body=b"not parquet")
    with pytest.raises(s3.ManifestError, match="SHA-256"):
        s3.read(client, BUCKET, manifest)


def test_rollback_serves_the_previous_version(client, prefix):
    s3.publish(client, BUCKET, prefix, "m-1", recs(10, 1), cold(1))
    s3.publish(client, BUCKET, prefix, "m-2", recs(10, 2), cold(2))
    assert s3.switch(client, BUCKET, prefix, "m-1")["model_version"] == "m-1"
    assert s3.current_manifest(client, BUCKET, prefix)["model_version"] == "m-1"
    assert [m["model_version"] for m in s3.versions(client, BUCKET, prefix)] == ["m-2", "m-1"]
    with pytest.raises(s3.ManifestError, match="never published"):
        s3.switch(client, BUCKET, prefix, "m-9")
