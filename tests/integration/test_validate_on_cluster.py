"""Snapshot validation on the local standalone Spark cluster.

The job itself is submitted once with spark-submit exactly as the DAG submits it (same
settings, same --py-files) but without Airflow, as any cluster would run it. The bad inputs
then run the job's body on one SparkSession attached to the same cluster, to spare a JVM start
per case. Each bad input must fail naming the expectation it broke and how many rows broke it,
and must leave no snapshot marked complete. The job's body runs each case on both of GX's
engines: pandas on the driver (what snapshots this small get) and Spark (what large ones get),
which must give the same verdicts.
"""

import json
import subprocess

import pytest

from movielens_recs import ingest
from movielens_recs.contracts import ValidateJob
from movielens_recs.errors import EXIT_BAD_INPUT
from movielens_recs.lake.snapshot import SnapshotStore
from movielens_recs.spark_submit import spark_submit_argv
from movielens_recs.validation.runner import PANDAS_MAX_ROWS
from movielens_recs.validation.snapshot_check import validate_snapshot
from tests.conftest import cluster_session, write_md5
from tests.movielens_fixtures import GOOD_MOVIES, GOOD_RATINGS, csv_files, zip_archive

RATING_OF_SEVEN = GOOD_RATINGS + [(4, 2, 7.0, 964982800)]


@pytest.fixture
def snapshot_of(dataset_server, settings_factory):
    """Serve an archive with these rows, then download and snapshot it as the DAG does."""

    def make(ratings, movies=GOOD_MOVIES):
        settings = settings_factory(dataset_server.url)
        write_md5(zip_archive(dataset_server.directory / "ml-test.zip", "ml-test", csv_files(ratings, movies)))
        store = SnapshotStore(settings.lake_uri)
        downloaded = ingest.download(settings, store, "ml-test")
        return settings, store, ingest.snapshot(settings, store, "ml-test", downloaded["md5"])

    return make


@pytest.fixture(params=["pandas", "spark"])
def engine(request):
    return request.param


@pytest.fixture(scope="module")
def cluster_spark(stack):
    """One application on the standalone cluster for this module, stopped at its end."""
    spark = cluster_session(stack, "tests-validation")
    yield spark
    spark.stop()


def _check(spark, settings, snap, engine):
    report_path = settings.state_dir / "report.json"
    report, payload = validate_snapshot(
        spark,
        dataset=snap["dataset"], snapshot_id=snap["snapshot_id"], data_dir=snap["data_dir"],
        ratings_uri=snap["ratings_spark_uri"], movies_uri=snap["movies_spark_uri"],
        expectations_dir=settings.expectations_dir, report_uri=str(report_path),
        data_docs_dir=settings.data_docs_dir, pandas_max_rows=PANDAS_MAX_ROWS if engine == "pandas" else 0,
    )
    assert json.loads(report_path.read_text()) == payload
    assert payload["engine"] == engine
    return report, payload


def _assert_failed_with(report, payload, store, snap, expectation, column, count):
    assert not report.success
    failures = [f for f in payload["failures"] if f["expectation"] == expectation]
    assert failures, payload["failures"]
    assert failures[0]["column"] == column and failures[0]["unexpected_count"] == count
    message = report.message("snapshot")
    assert f"{expectation}({column}) failed: {count} of" in message
    with pytest.raises(RuntimeError, match="failed report"):
        store.mark_validated(snap["dataset"], snap["snapshot_id"], payload)
    assert not store.is_complete(snap["dataset"], snap["snapshot_id"])
    return message


def test_job_fails_with_exit_code_and_message_under_spark_submit(stack, stack_env, snapshot_of):
    settings, store, snap = snapshot_of(RATING_OF_SEVEN)
    report = settings.state_dir / "report.json"
    job = ValidateJob(dataset=snap["dataset"], snapshot_id=snap["snapshot_id"], data_dir=snap["data_dir"],
                      ratings=snap["ratings_spark_uri"], movies=snap["movies_spark_uri"],
                      expectations_dir=str(settings.expectations_dir), report_uri=str(report))
    argv = spark_submit_argv(settings, stack.spark_master_url(), job.JOB, job.to_argv())
    proc = subprocess.run(argv, env=stack_env, capture_output=True, text=True, timeout=600)
    # spark-submit relays the Python driver's stdout and stderr together on its stdout
    assert proc.returncode == EXIT_BAD_INPUT, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "expect_column_values_to_be_in_set(rating) failed: 1 of 6 rows broke it, e.g. 7.0" in proc.stdout
    written = json.loads(report.read_text())
    assert written["success"] is False
    # what the DAG's mark step does with that report: refuse it, so the snapshot never completes
    with pytest.raises(RuntimeError, match="failed report"):
        store.mark_validated(snap["dataset"], snap["snapshot_id"], written)
    assert not store.is_complete(snap["dataset"], snap["snapshot_id"])


def test_good_snapshot_passes_and_writes_data_docs(cluster_spark, snapshot_of, engine):
    settings, store, snap = snapshot_of(GOOD_RATINGS)
    report, payload = _check(cluster_spark, settings, snap, engine)
    assert report.success and payload["failures"] == []
    assert (settings.data_docs_dir / "index.html").exists()
    store.mark_validated(snap["dataset"], snap["snapshot_id"], payload)
    assert store.is_complete(snap["dataset"], snap["snapshot_id"])


def test_duplicate_user_movie_pairs(cluster_spark, snapshot_of, engine):
    settings, store, snap = snapshot_of(GOOD_RATINGS + [(1, 1, 2.0, 964982800)])  # user 1 rates movie 1 twice
    report, payload = _check(cluster_spark, settings, snap, engine)
    _assert_failed_with(report, payload, store, snap, "expect_compound_columns_to_be_unique", "user_id, movie_id", 2)


def test_rating_out_of_scale(cluster_spark, snapshot_of, engine):
    settings, store, snap = snapshot_of(RATING_OF_SEVEN)
    report, payload = _check(cluster_spark, settings, snap, engine)
    message = _assert_failed_with(report, payload, store, snap, "expect_column_values_to_be_in_set", "rating", 1)
    assert "e.g. 7.0" in message


def test_rated_movie_absent_from_movies(cluster_spark, snapshot_of, engine):
    settings, store, snap = snapshot_of(GOOD_RATINGS + [(4, 999, 3.0, 964982800), (5, 999, 4.0, 964982801)])
    report, payload = _check(cluster_spark, settings, snap, engine)
    message = _assert_failed_with(report, payload, store, snap, "expect_column_values_to_be_null", "unknown_movie_id", 2)
    assert "e.g. 999, 999" in message


def test_implausible_timestamp(cluster_spark, snapshot_of, engine):
    settings, store, snap = snapshot_of(GOOD_RATINGS + [(4, 2, 3.0, 86400)])  # 1970-01-02
    report, payload = _check(cluster_spark, settings, snap, engine)
    _assert_failed_with(report, payload, store, snap, "expect_column_values_to_be_between", "rated_at", 1)


def test_a_rating_from_the_future(cluster_spark, snapshot_of, engine):
    import time

    settings, store, snap = snapshot_of(GOOD_RATINGS + [(4, 2, 3.0, int(time.time()) + 86400 * 30)])
    report, payload = _check(cluster_spark, settings, snap, engine)
    _assert_failed_with(report, payload, store, snap, "expect_column_values_to_be_between", "rated_at", 1)
