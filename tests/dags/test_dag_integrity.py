"""Every DAG in dags/ imports cleanly and keeps the shape operators rely on."""

from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag():
    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_daily_dag_tasks(dagbag):
    dag = dagbag.dags["movielens_recommendations"]
    assert dag is not None
    assert {"download", "snapshot", "validation_needed", "validate", "snapshot_ready"} <= set(dag.task_ids)
    assert dag.get_task("validate").upstream_task_ids == {"validation_needed"}
    assert dag.get_task("snapshot_ready").upstream_task_ids == {"validate", "validation_needed", "snapshot"}


def test_every_dag_has_tags_retries_and_no_catchup(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.catchup is False, f"{dag_id} would backfill every day since start_date when unpaused"
        for task in dag.tasks:
            assert task.retries >= 1, f"{dag_id}.{task.task_id} has no retries"


def test_validate_goes_through_spark_default(dagbag):
    task = dagbag.dags["movielens_recommendations"].get_task("validate")
    assert type(task).__name__ == "ValidateSnapshotOperator"
    assert task._conn_id == "spark_default"
    assert task.application.endswith("spark_jobs/validate_snapshot.py")


def test_dataset_param_defaults_to_ml_latest_small(dagbag):
    dag = dagbag.dags["movielens_recommendations"]
    assert dag.params["dataset"] == "ml-latest-small"
