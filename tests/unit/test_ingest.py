"""The download and snapshot stages as the DAG runs them, on archives the tests build, served
over HTTP on 127.0.0.1. Each bad input must fail with a message naming the problem and leave
no snapshot marked complete."""

import pyarrow.parquet as pq
import pytest

from movielens_recs import ingest
from movielens_recs.errors import ChecksumMismatchError, CorruptArchiveError, SchemaError, TruncatedDownloadError, UnsafeArchiveError
from movielens_recs.lake.snapshot import SnapshotStore
from tests.conftest import write_md5
from tests.movielens_fixtures import GOOD_RATINGS, csv_files, symlink_entry, zip_archive


def _serve(server, files, extra=(), name="ml-test"):
    archive = zip_archive(server.directory / f"{name}.zip", name, files, extra=list(extra))
    write_md5(archive)
    return archive


def _run(settings, dataset="ml-test"):
    store = SnapshotStore(settings.lake_uri)
    downloaded = ingest.download(settings, store, dataset)
    return store, downloaded, ingest.snapshot(settings, store, dataset, downloaded["md5"])


def _left_behind(settings, dataset="ml-test") -> list:
    """What download and snapshot write that a later run could mistake for good data: a manifest
    (`_SNAPSHOT.json`), a data folder, or a partial download."""
    root = settings.state_dir.parent
    snapshots = root / "lake" / "snapshots" / dataset
    found = [p for p in snapshots.rglob("*") if p.name == "_SNAPSHOT.json" or p.name.startswith("data-")] \
        if snapshots.exists() else []
    return found + list(root.rglob("*.part"))


def _nothing_complete(settings, dataset="ml-test"):
    assert _left_behind(settings, dataset) == []


def test_the_leftover_check_sees_a_written_snapshot(dataset_server, settings_factory):
    """The check the failure tests rely on finds what a good run writes."""
    settings = settings_factory(dataset_server.url)
    _serve(dataset_server, csv_files())
    _run(settings)
    assert {p.name.split("-")[0] for p in _left_behind(settings)} == {"_SNAPSHOT.json", "data"}


def test_good_archive_becomes_a_snapshot_that_is_not_yet_complete(dataset_server, settings_factory):
    settings = settings_factory(dataset_server.url)
    _serve(dataset_server, csv_files())
    store, downloaded, snap = _run(settings)
    assert snap["ratings_rows"] == len(GOOD_RATINGS) and snap["movies_rows"] == 3
    assert snap["needs_validation"] and not snap["reused"]
    assert pq.read_table(snap["ratings_uri"]).num_rows == len(GOOD_RATINGS)
    # written but not validated: downstream must not use it yet
    assert store.manifest("ml-test", downloaded["md5"]) is not None
    assert not store.is_complete("ml-test", downloaded["md5"])


def test_rerun_reuses_the_snapshot(dataset_server, settings_factory):
    settings = settings_factory(dataset_server.url)
    _serve(dataset_server, csv_files())
    _, _, first = _run(settings)
    _, _, second = _run(settings)
    assert second["reused"] and second["data_dir"] == first["data_dir"]


def test_validated_snapshot_is_not_downloaded_again(dataset_server, settings_factory):
    settings = settings_factory(dataset_server.url)
    archive = _serve(dataset_server, csv_files())
    store, downloaded, snap = _run(settings)
    store.mark_validated("ml-test", snap["snapshot_id"], {"success": True, "data_dir": snap["data_dir"], "suites_fingerprint": snap["suites_fingerprint"]})
    archive.unlink()  # only the checksum is needed to know the snapshot is there
    again = ingest.download(settings, store, "ml-test")
    assert again["reused_snapshot"] and again["archive_path"] is None
    assert ingest.snapshot(settings, store, "ml-test", again["md5"])["needs_validation"] is False


def test_wrong_checksum(dataset_server, settings_factory):
    settings = settings_factory(dataset_server.url)
    _serve(dataset_server, csv_files())
    (dataset_server.directory / "ml-test.zip.md5").write_text(f"MD5 (ml-test.zip) = {'f' * 32}\n")
    with pytest.raises(ChecksumMismatchError, match="corrupt or has been tampered with"):
        _run(settings)
    _nothing_complete(settings)


def test_truncated_archive_in_transfer(dataset_server, settings_factory):
    settings = settings_factory(dataset_server.url)
    _serve(dataset_server, csv_files())
    dataset_server.truncate("ml-test.zip", 50)
    with pytest.raises(TruncatedDownloadError):
        _run(settings)
    _nothing_complete(settings)


def test_truncated_archive_with_matching_checksum(dataset_server, settings_factory):
    """A publisher that checksummed an already truncated file: the MD5 matches, the zip is broken."""
    settings = settings_factory(dataset_server.url)
    archive = _serve(dataset_server, csv_files())
    archive.write_bytes(archive.read_bytes()[:-60])
    write_md5(archive)
    with pytest.raises(CorruptArchiveError, match="ml-test.zip"):
        _run(settings)
    _nothing_complete(settings)


def test_archive_with_parent_dir_entry(dataset_server, settings_factory):
    settings = settings_factory(dataset_server.url)
    _serve(dataset_server, csv_files(), extra=[("ml-test/../../../escaped.txt", b"x")])
    with pytest.raises(UnsafeArchiveError, match=r"refused entry 'ml-test/../../../escaped.txt': '..' path component"):
        _run(settings)
    _nothing_complete(settings)
    assert not list(settings.state_dir.parent.rglob("escaped.txt"))


def test_archive_with_link(dataset_server, settings_factory):
    settings = settings_factory(dataset_server.url)
    _serve(dataset_server, csv_files(), extra=[symlink_entry("ml-test/links.csv", "/etc/shadow")])
    with pytest.raises(UnsafeArchiveError, match="'ml-test/links.csv': symbolic link"):
        _run(settings)
    _nothing_complete(settings)


def test_ratings_with_missing_column(dataset_server, settings_factory):
    settings = settings_factory(dataset_server.url)
    _serve(dataset_server, csv_files(ratings=[(1, 1, 964982703)], ratings_header="userId,movieId,timestamp"))
    with pytest.raises(SchemaError, match=r"ratings.csv is missing column\(s\) rating"):
        _run(settings)
    _nothing_complete(settings)
    assert not list((settings.state_dir.parent / "lake").rglob("_SNAPSHOT.json"))
    assert not list((settings.state_dir / "work").iterdir()), "the unpacked archive must be cleaned up"


def test_a_changed_suite_file_asks_for_validation_again(dataset_server, settings_factory, tmp_path):
    import shutil

    from movielens_recs.config import Settings

    suites = tmp_path / "expectations"
    shutil.copytree(Settings.from_env().expectations_dir, suites)
    settings = settings_factory(dataset_server.url, MLRECS_EXPECTATIONS_DIR=suites)
    _serve(dataset_server, csv_files())
    store, _, snap = _run(settings)
    store.mark_validated("ml-test", snap["snapshot_id"], {"success": True, "data_dir": snap["data_dir"],
                                                          "suites_fingerprint": snap["suites_fingerprint"]})
    assert _run(settings)[2]["needs_validation"] is False
    ratings = suites / "ratings.json"
    ratings.write_text(ratings.read_text().replace('"expectations": [', '"expectations": [\n', 1))
    again = _run(settings)[2]
    assert again["needs_validation"] is True and again["reused"], "same data, new suites: validate, not re-read"
