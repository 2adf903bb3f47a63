"""Daily MovieLens recommendations.

download -> snapshot -> validate -> prepare_model -> train -> evaluate -> gate
    -> recommend (top N per user, validated) -> publish (PostgreSQL and/or S3, then promote)

Each run trains on the ratings made before the end of its data interval. A model the gate
rejects, or whose recommendations fail their suites, is recorded as rejected; one trained for an
older date than the champion's (a backfill) is recorded as historical. Either way nothing after
it runs: readers keep the last published set, and the champion stays champion.
This file only wires tasks; what they do lives in `plugins/movielens_recs`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task

from movielens_recs.config import DEFAULT_DATASET, SINKS, Settings
from movielens_recs.datasets.catalog import known_datasets
from movielens_recs.models.params import AlsParams
from movielens_recs.orchestration import modeling, publishing, tasks
from movielens_recs.orchestration.notify import on_failure
from movielens_recs.orchestration.spark import ProjectSparkSubmitOperator, RecommendOperator, ValidateSnapshotOperator

ALS = AlsParams()
SETTINGS = Settings.from_env()


def _snap(key: str) -> str:
    return "{{ ti.xcom_pull(task_ids='snapshot')['" + key + "'] }}"


def _model(key: str) -> str:
    return "{{ ti.xcom_pull(task_ids='prepare_model')['" + key + "'] }}"


def _model_param(key: str) -> str:
    return "{{ ti.xcom_pull(task_ids='prepare_model')['params']['" + key + "'] }}"


@dag(
    dag_id="movielens_recommendations",
    description="Download and validate MovieLens, train ALS on Spark, gate it, publish every user's top N",
    schedule="@daily",
    # from MovieLens' first ratings, so that any past day can be backfilled; with catchup off,
    # unpausing the DAG does not create a run for every day since
    start_date=datetime(1995, 1, 1),
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
        "rank": Param(ALS.rank, type="integer", minimum=1, maximum=500, description="ALS latent factors"),
        "max_iter": Param(ALS.max_iter, type="integer", minimum=1, maximum=100, description="ALS iterations"),
        "reg_param": Param(ALS.reg_param, type="number", minimum=0, description="ALS regularization"),
        "nonnegative": Param(ALS.nonnegative, type="boolean", description="non-negative factors"),
        "blocks": Param(ALS.blocks, type="integer", minimum=1, maximum=1000, description="ALS user and item blocks"),
        "seed": Param(ALS.seed, type="integer", description="seed of the split and of ALS"),
        "split": Param(ALS.split, type="string", enum=["random", "time"],
                       description="random (seeded) or time (most recent ratings held out)"),
        "test_fraction": Param(ALS.test_fraction, type="number", exclusiveMinimum=0, exclusiveMaximum=1),
        "k": Param(10, type="integer", minimum=1, maximum=100, description="k of the ranking metrics"),
        "rmse_ceiling": Param(None, type=["null", "number"], minimum=0,
                              description="gate: highest RMSE promoted (empty: the dataset's default)"),
        "champion_tolerance": Param(None, type=["null", "number"], minimum=0, maximum=1,
                                    description="gate: how much worse than the champion's RMSE is tolerated "
                                                "(empty: MLRECS_GATE_CHAMPION_TOLERANCE or 1%)"),
        "require_beat_baseline": Param(None, type=["null", "boolean"],
                                       description="gate: NDCG@k must reach the popularity baseline's "
                                                   "(empty: MLRECS_GATE_REQUIRE_BEAT_BASELINE or off)"),
        "top_n": Param(SETTINGS.top_n, type="integer", minimum=1, maximum=1000,
                       description="recommendations published per user"),
        "sinks": Param(list(SETTINGS.publish_sinks), type="array", minItems=1, uniqueItems=True,
                       items={"type": "string", "enum": list(SINKS)},
                       description="where the recommendations are published (MLRECS_PUBLISH_SINKS sets the default)"),
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

    settings = SETTINGS
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

    @task
    def prepare_model(ready: dict, params=None, **context) -> dict:
        return modeling.prepare_model(ready, params, context)

    train = ProjectSparkSubmitOperator(
        task_id="train",
        job="train_als",
        execution_timeout=timedelta(hours=2),
        application_args=[
            "--ratings", _model("ratings_spark_uri"),
            "--dataset", _model("dataset"),
            "--snapshot-id", _model("snapshot_id"),
            "--model-id", _model("model_id"),
            "--model-uri", _model("model_uri"),
            "--checkpoint-dir", _model("checkpoint_dir"),
            "--cutoff", _model("cutoff"),
            *[arg for key in ALS.as_dict() for arg in ("--" + key.replace("_", "-"), _model_param(key))],
        ],
    )

    evaluate = ProjectSparkSubmitOperator(
        task_id="evaluate",
        job="evaluate_als",
        execution_timeout=timedelta(hours=1),
        application_args=[
            "--model-id", _model("model_id"),
            "--model-uri", _model("model_uri"),
            "--k", _model("k"),
            "--champion-model-id", _model("champion_id"),
            "--champion-model-uri", _model("champion_uri"),
        ],
    )

    @task.short_circuit
    def gate(prepared: dict, params=None, **context) -> bool:
        """Approves or rejects; a rejection skips everything after it (nothing is published)."""
        return modeling.run_gate(prepared, params, context)

    recommend = RecommendOperator(
        task_id="recommend",
        model_id=_model("model_id"),
        model_uri=_model("model_uri"),
        execution_timeout=timedelta(hours=1),
        application_args=[
            "--model-id", _model("model_id"),
            "--model-uri", _model("model_uri"),
            "--ratings", _model("ratings_spark_uri"),
            "--movies", _model("movies_spark_uri"),
            "--top-n", "{{ params.top_n }}",
            "--cutoff", _model("cutoff"),
            "--expectations-dir", str(settings.expectations_dir),
            "--data-docs-dir", str(settings.data_docs_dir),
        ],
    )

    @task(execution_timeout=timedelta(minutes=30))
    def publish(prepared: dict, params=None, **context) -> dict:
        """Every chosen sink, then the promotion, serialized per dataset across all runs."""
        return publishing.publish(prepared, params, context)

    snap = snapshot(download())
    ready = snapshot_ready(snap)
    validation_needed(snap) >> [validate, ready]
    validate >> ready
    prepared = prepare_model(ready)
    prepared >> train >> evaluate
    evaluate >> gate(prepared) >> recommend
    recommend >> publish(prepared)


movielens_recommendations()
