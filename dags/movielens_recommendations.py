"""Daily MovieLens recommendations: download -> snapshot -> validate.

This file only wires tasks; what they do lives in `plugins/movielens_recs`. Train, evaluate,
gate, recommend and publish join this DAG as they are built.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task

from movielens_recs.config import DEFAULT_DATASET, Settings
from movielens_recs.datasets.catalog import known_datasets
from movielens_recs.orchestration import tasks
from movielens_recs.orchestration.notify import on_failure
from movielens_recs.orchestration.spark import ValidateSnapshotOperator

def _snap(key: str) -> str:
    return "{{ ti.xcom_pull(task_ids='snapshot')['" + key + "'] }}"


@dag(
    dag_id="movielens_recommendations",
    description="Download, validate and (next) train ALS on MovieLens, publishing top-N recommendations",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["movielens", "recommendations", "spark", "great-expectations"],
    default_args={
        "owner": "ml-platform",
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
        "on_failure_callback": on_failure,
    },
    params={
        "dataset": Param(
            DEFAULT_DATASET,
            type="string",
            pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
            description=f"MovieLens release to fetch from MLRECS_BASE_URL, e.g. {', '.join(known_datasets())}",
        ),
    },
    doc_md=__doc__,
)
def movielens_recommendations():
    @task(execution_timeout=timedelta(minutes=30))
    def download(params=None) -> dict:
        return tasks.download(params["dataset"])

    @task(execution_timeout=timedelta(minutes=60))
    def snapshot(downloaded: dict) -> dict:
        return tasks.snapshot(downloaded)

    @task.branch
    def validation_needed(snap: dict) -> str:
        return tasks.choose_validation(snap, "validate", "snapshot_ready")

    settings = Settings.from_env()
    validate = ValidateSnapshotOperator(
        task_id="validate",
        report_uri=_snap("report_uri"),
        execution_timeout=timedelta(minutes=60),
        application_args=[
            "--dataset", _snap("dataset"),
            "--snapshot-id", _snap("snapshot_id"),
            "--data-dir", _snap("data_dir"),
            "--ratings", _snap("ratings_spark_uri"),
            "--movies", _snap("movies_spark_uri"),
            "--suites-fingerprint", _snap("suites_fingerprint"),
            "--expectations-dir", str(settings.expectations_dir),
            "--data-docs-dir", str(settings.data_docs_dir),
            "--report-uri", _snap("report_uri"),
        ],
    )

    @task(trigger_rule="none_failed_min_one_success")
    def snapshot_ready(snap: dict) -> dict:
        return tasks.mark_validated(snap)

    snap = snapshot(download())
    ready = snapshot_ready(snap)
    validation_needed(snap) >> [validate, ready]
    validate >> ready


movielens_recommendations()
