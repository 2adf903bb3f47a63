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


def test_the_daily_dag_alerts_on_a_run_unfinished_by_its_deadline(dagbag):
    from airflow.sdk import AsyncCallback
    from airflow.sdk.definitions.deadline import DagRunQueuedAtDeadline

    from movielens_recs.config import Settings

    (alert,) = dagbag.dags["movielens_recommendations"].deadline
    assert isinstance(alert.reference, DagRunQueuedAtDeadline)
    assert alert.interval.total_seconds() == Settings.from_env().run_deadline_seconds
    assert isinstance(alert.callback, AsyncCallback)
    assert alert.callback.path == "movielens_recs.orchestration.notify.on_deadline_missed"


def test_daily_dag_tasks(dagbag):
    dag = dagbag.dags["movielens_recommendations"]
    assert dag is not None
    assert {"download", "snapshot", "validation_needed", "validate", "snapshot_ready",
            "prepare_model", "train_evaluate", "gate"} <= set(dag.task_ids)
    assert dag.get_task("train_evaluate").upstream_task_ids == {"prepare_model"}
    assert dag.get_task("gate").upstream_task_ids == {"train_evaluate", "prepare_model"}
    assert dag.get_task("validate").upstream_task_ids == {"validation_needed", "snapshot"}
    assert dag.get_task("snapshot_ready").upstream_task_ids == {"validate", "validation_needed", "snapshot"}


def test_publishing_follows_the_gate_and_the_cutoff_reaches_the_spark_jobs(dagbag):
    from movielens_recs.config import Settings
    from movielens_recs.contracts import RecommendJob, TrainEvaluateJob, ValidateJob

    dag = dagbag.dags["movielens_recommendations"]
    assert dag.get_task("recommend").upstream_task_ids == {"gate", "prepare_model"}
    assert dag.get_task("publish").upstream_task_ids == {"recommend", "prepare_model"}
    assert dag.get_task("publish").downstream_task_ids == set()
    # each Spark task builds its job's arguments from its upstream task's XCom, by the job's contract
    contracts = {task_id: (dag.get_task(task_id).contract, dag.get_task(task_id).upstream.operator.task_id)
                 for task_id in ("validate", "train_evaluate", "recommend")}
    assert contracts == {"validate": (ValidateJob, "snapshot"), "train_evaluate": (TrainEvaluateJob, "prepare_model"),
                         "recommend": (RecommendJob, "prepare_model")}
    prepared = {"model_id": "m", "model_uri": "file:///m", "dataset": "ml-x", "snapshot_id": "s",
                "ratings_spark_uri": "file:///r", "movies_spark_uri": "file:///mv", "cutoff": "2026-12-01T00:00:00+00:00",
                "params": {"rank": 8}, "k": 10, "champion_id": "", "champion_uri": "", "checkpoint_dir": "/c",
                "excluded_movies": [3], "promotion": {}}
    for task_id in ("train_evaluate", "recommend"):
        job = dag.get_task(task_id).contract.from_upstream(prepared, {"params": {"top_n": 5}}, Settings.from_env())
        assert "--cutoff=2026-12-01T00:00:00+00:00" in job.to_argv()


def test_every_dag_has_tags_retries_and_no_catchup(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.catchup is False, f"{dag_id} would backfill every day since start_date when unpaused"
        for task in dag.tasks:
            assert task.retries >= 1, f"{dag_id}.{task.task_id} has no retries"


@pytest.mark.parametrize("task_id, job", [("validate", "validate_snapshot"), ("train_evaluate", "train_evaluate"),
                                         ("recommend", "recommend"),
                                         ("tune", "tune_als")])
def test_spark_jobs_go_through_spark_default_with_configured_resources(dagbag, task_id, job):
    task = dagbag.dags["movielens_recommendations"].get_task(task_id)
    assert type(task).__name__ in ("ProjectSparkSubmitOperator", "ValidateSnapshotOperator", "RecommendOperator",
                                       "TuneOperator")
    assert task._conn_id == "spark_default"
    assert task.application.endswith(f"spark_jobs/{job}.py") and task.contract.JOB == job
    assert task._executor_memory and task.conf["spark.sql.shuffle.partitions"]


def test_params_default_to_ml_latest_small_and_every_model_param_to_the_tuned_or_built_in_value(dagbag):
    from movielens_recs.models.params import AlsParams

    dag = dagbag.dags["movielens_recommendations"]
    assert dag.params["dataset"] == "ml-latest-small"
    # empty, so that prepare_model can tell a run's own choice from the dataset's tuned params
    assert {key: dag.params[key] for key in AlsParams.field_names()} == dict.fromkeys(AlsParams.field_names())
    for key, default in AlsParams().as_dict().items():
        assert str(default) in dag.params.get_param(key).description, key
    assert dag.params["tune"] == "off" and dag.params["k"] == 10
    assert dag.params["top_n"] == 10 and dag.params["sinks"] == ["postgres", "s3"]


def test_tuning_is_optional_and_prepare_model_runs_either_way(dagbag):
    dag = dagbag.dags["movielens_recommendations"]
    assert dag.get_task("tune").upstream_task_ids == {"snapshot_ready"}
    assert dag.get_task("prepare_model").upstream_task_ids == {"snapshot_ready", "tune"}
    assert dag.get_task("prepare_model").trigger_rule == "none_failed_min_one_success"
    assert dag.params.get_param("tune").schema["enum"] == ["off", "quick", "full"]


@pytest.mark.parametrize("param, value", [
    ("dataset", "../etc"), ("dataset", ""), ("top_n", 0), ("top_n", "ten"), ("sinks", ["ftp"]), ("sinks", []),
    ("rank", -1), ("reg_param", -0.5), ("tune", "maybe"), ("k", 0),
])
def test_the_trigger_form_refuses_invalid_values(dagbag, param, value):
    """The params' JSON schema is what the UI's trigger form and the API enforce."""
    import copy

    from airflow.sdk.definitions.param import ParamValidationError

    params = copy.deepcopy(dagbag.dags["movielens_recommendations"].params)
    params.validate()  # the defaults are valid
    with pytest.raises(ParamValidationError, match=f"param {param}"):
        params.update({param: value})
        params.validate()


def test_the_fold_in_dag_maps_one_fold_in_per_dataset_on_its_schedule(dagbag):
    from movielens_recs.config import Settings

    dag = dagbag.dags["movielens_fold_in"]
    assert dag.max_active_runs == 1
    assert dag.timetable.expression == Settings.from_env().fold_in_schedule == "*/15 * * * *"
    assert dag.get_task("fold_in").upstream_task_ids == {"datasets"}
    assert type(dag.get_task("fold_in")).__name__.endswith("MappedOperator")  # one instance per dataset
