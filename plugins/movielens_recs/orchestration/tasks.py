"""What each Python task of the DAG does, kept out of the DAG file so it can be tested."""

from __future__ import annotations

import logging

from airflow.sdk.exceptions import AirflowFailException

from movielens_recs import ingest
from movielens_recs.config import Settings
from movielens_recs.errors import (
    ChecksumConflictError,
    DownloadTooSlowError,
    InvalidDatasetName,
    PipelineInputError,
)
from movielens_recs.lake.filesystem import join, read_json
from movielens_recs.lake.snapshot import SnapshotStore
from movielens_recs.orchestration.connections import lake_s3_options

log = logging.getLogger(__name__)


def _store(settings: Settings) -> SnapshotStore:
    return SnapshotStore(settings.lake_uri, lake_s3_options(settings.lake_uri))


def fail_without_retry(exc: PipelineInputError) -> AirflowFailException:
    """Bad data does not get better on retry: fail at once, with the problem as the message."""
    return AirflowFailException(f"{type(exc).__name__}: {exc}")


def download(dataset: str) -> dict:
    """Download errors keep the task's retries (a checksum mismatch can come from a flaky
    transfer, and each retry fetches the archive afresh), except those no retry can change."""
    settings = Settings.from_env()
    try:
        return ingest.download(settings, _store(settings), dataset)
    except (InvalidDatasetName, ChecksumConflictError, DownloadTooSlowError) as exc:
        raise fail_without_retry(exc) from exc


def snapshot(downloaded: dict) -> dict:
    settings = Settings.from_env()
    try:
        result = ingest.snapshot(settings, _store(settings), downloaded["dataset"], downloaded["md5"])
    except PipelineInputError as exc:
        raise fail_without_retry(exc) from exc
    result["report_uri"] = report_uri(settings, result)
    log.info(
        "snapshot %s/%s: %d ratings, %d movies (%s)",
        result["dataset"], result["snapshot_id"], result["ratings_rows"], result["movies_rows"],
        "reused" if result["reused"] else "written",
    )
    return result


def report_uri(settings: Settings, snap: dict) -> str:
    return join(settings.lake_uri, "snapshots", snap["dataset"], snap["snapshot_id"], "_reports", f"{snap['data_dir']}.json")


def choose_validation(snap: dict, validate_task_id: str, ready_task_id: str) -> str:
    if snap["needs_validation"]:
        return validate_task_id
    log.info("snapshot already validated under suites %s: skipping validation", snap["suites_fingerprint"])
    return ready_task_id


def mark_validated(snap: dict) -> dict:
    settings = Settings.from_env()
    store = _store(settings)
    if not snap["needs_validation"]:
        return {**snap, "validation": store.validation(snap["dataset"], snap["snapshot_id"])}
    report = read_json(report_uri(settings, snap), lake_s3_options(settings.lake_uri))
    if not report["success"]:  # the Spark job exits non-zero first; this is a second lock
        raise AirflowFailException("validation report says the snapshot failed validation")
    marker = store.mark_validated(snap["dataset"], snap["snapshot_id"], report)
    return {**snap, "validation": marker}
