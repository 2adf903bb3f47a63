"""The DAG's Python task bodies turn bad data into an immediate, named failure."""

import pytest
from airflow.sdk.exceptions import AirflowFailException

from movielens_recs.errors import ChecksumMismatchError
from movielens_recs.orchestration import tasks
from tests.conftest import write_md5
from tests.movielens_fixtures import csv_files, zip_archive


@pytest.fixture
def env(monkeypatch, tmp_path, dataset_server):
    monkeypatch.setenv("MLRECS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("MLRECS_LAKE_URI", str(tmp_path / "lake"))
    monkeypatch.setenv("MLRECS_BASE_URL", dataset_server.url)
    monkeypatch.setenv("MLRECS_HTTP_RETRIES", "0")
    return dataset_server


def test_schema_error_fails_without_retry_and_names_the_problem(env):
    write_md5(zip_archive(env.directory / "ml-test.zip", "ml-test",
                          csv_files(ratings=[(1, 1, 964982703)], ratings_header="userId,movieId,timestamp")))
    downloaded = tasks.download("ml-test")
    with pytest.raises(AirflowFailException, match=r"SchemaError: ratings.csv is missing column\(s\) rating"):
        tasks.snapshot(downloaded)


def test_download_errors_keep_their_retries(env):
    zip_archive(env.directory / "ml-test.zip", "ml-test", csv_files())
    (env.directory / "ml-test.zip.md5").write_text(f"{'0' * 32}  ml-test.zip\n")
    with pytest.raises(ChecksumMismatchError):  # not AirflowFailException: Airflow may retry it
        tasks.download("ml-test")


def test_good_archive_needs_validation_then_reports_where(env):
    write_md5(zip_archive(env.directory / "ml-test.zip", "ml-test", csv_files()))
    snap = tasks.snapshot(tasks.download("ml-test"))
    assert snap["needs_validation"]
    assert snap["report_uri"].endswith(f"/snapshots/ml-test/{snap['snapshot_id']}/_reports/{snap['data_dir']}.json")
    assert tasks.choose_validation(snap, "validate", "snapshot_ready") == "validate"
