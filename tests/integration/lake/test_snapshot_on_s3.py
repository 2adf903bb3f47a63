"""A lake on the stack's S3 store: the snapshot markers go through the same JSON I/O as on a
disk, and a marker not written yet reads as absent rather than as an error."""

import uuid

from mlrecs_devkit.stack import BUCKET
from movielens_recs.lake.filesystem import S3Options, read_json
from movielens_recs.lake.snapshot import SNAPSHOT_MARKER, SnapshotStore
from tests.unit.lake.test_snapshot import MOVIES, _batches


def test_a_snapshot_on_s3_is_complete_only_once_validated(stack):
    env = stack.environment()
    s3 = S3Options(endpoint_url=env["AWS_ENDPOINT_URL_S3"], access_key=env["AWS_ACCESS_KEY_ID"],
                   secret_key=env["AWS_SECRET_ACCESS_KEY"], region=env["AWS_DEFAULT_REGION"])
    store = SnapshotStore(f"s3://{BUCKET}/tests/lake-{uuid.uuid4().hex[:8]}", s3)
    assert store.manifest("ml-x", "abc") is None

    manifest = store.write("ml-x", "abc", _batches(2), MOVIES, source={"k": "v"})
    assert read_json(store.uri("ml-x", "abc", SNAPSHOT_MARKER), s3) == manifest
    assert store.validation("ml-x", "abc") is None
    assert not store.is_complete("ml-x", "abc")

    store.mark_validated("ml-x", "abc", {"success": True, "data_dir": manifest["data_dir"]})
    assert store.is_complete("ml-x", "abc")
