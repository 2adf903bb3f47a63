import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from movielens_recs.datasets.readers import MOVIES_SCHEMA, RATINGS_SCHEMA
from movielens_recs.lake import snapshot as snapshot_module
from movielens_recs.lake.snapshot import SnapshotStore


def _batches(n_batches: int, rows: int = 3):
    for b in range(n_batches):
        yield pa.RecordBatch.from_pydict(
            {
                "user_id": [b] * rows,
                "movie_id": list(range(rows)),
                "rating": [4.0] * rows,
                "rated_at": pa.array([0] * rows, pa.timestamp("s", tz="UTC")).cast(pa.timestamp("ms", tz="UTC")),
            },
            schema=RATINGS_SCHEMA,
        )


MOVIES = pa.table({"movie_id": pa.array([0, 1, 2], pa.int32()), "title": ["a", "b", "c"], "genres": ["x", "y", "z"]}, schema=MOVIES_SCHEMA)


def test_write_then_validate_makes_it_complete(tmp_path):
    store = SnapshotStore(str(tmp_path / "lake"))
    manifest = store.write("ml-x", "abc", _batches(2), MOVIES, source={"k": "v"})
    assert manifest["ratings_rows"] == 6 and manifest["movies_rows"] == 3
    assert pq.read_table(manifest["ratings_uri"]).num_rows == 6
    assert manifest["ratings_spark_uri"].startswith("file:///")
    assert not store.is_complete("ml-x", "abc")
    store.mark_validated("ml-x", "abc", {"success": True, "data_dir": manifest["data_dir"]})
    assert store.is_complete("ml-x", "abc")


def test_large_snapshots_are_split_into_files(tmp_path, monkeypatch):
    monkeypatch.setattr(snapshot_module, "ROWS_PER_FILE", 4)
    store = SnapshotStore(str(tmp_path / "lake"))
    manifest = store.write("ml-x", "abc", _batches(3), MOVIES, source={})
    assert manifest["ratings_files"] == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert pq.read_table(manifest["ratings_uri"]).num_rows == 9


def test_a_write_that_fails_midway_leaves_no_manifest_and_no_data(tmp_path):
    store = SnapshotStore(str(tmp_path / "lake"))

    def failing():
        yield from _batches(1)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        store.write("ml-x", "abc", failing(), MOVIES, source={})
    assert store.manifest("ml-x", "abc") is None
    assert not store.is_complete("ml-x", "abc")
    assert list((tmp_path / "lake" / "snapshots" / "ml-x" / "abc").iterdir()) == []


def test_a_new_attempt_invalidates_the_old_validation(tmp_path):
    store = SnapshotStore(str(tmp_path / "lake"))
    first = store.write("ml-x", "abc", _batches(1), MOVIES, source={})
    store.mark_validated("ml-x", "abc", {"success": True, "data_dir": first["data_dir"]})
    store.write("ml-x", "abc", _batches(1), MOVIES, source={})
    assert not store.is_complete("ml-x", "abc"), "validation was for the previous attempt's files"


def test_refuses_to_mark_failed_or_stale_reports(tmp_path):
    store = SnapshotStore(str(tmp_path / "lake"))
    manifest = store.write("ml-x", "abc", _batches(1), MOVIES, source={})
    with pytest.raises(RuntimeError, match="failed report"):
        store.mark_validated("ml-x", "abc", {"success": False, "data_dir": manifest["data_dir"]})
    with pytest.raises(RuntimeError, match="validate again"):
        store.mark_validated("ml-x", "abc", {"success": True, "data_dir": "data-older"})
    assert not store.is_complete("ml-x", "abc")
