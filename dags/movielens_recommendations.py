"""Daily MovieLens recommendations.

download -> snapshot -> validate -> [tune] -> prepare_model -> train_evaluate -> gate
    -> recommend (top N per user, validated) -> publish (PostgreSQL and/or S3, then promote)

Each model version is two models trained on the same split: a rating model (biases plus explicit
ALS, judged by RMSE against the bias baseline) and a ranking model (implicit ALS, judged by
NDCG@k against popularity), compared with the champion only on ratings neither trained on.

Each run trains on the ratings made before the end of its data interval. A model the gate
rejects, or whose recommendations fail their suites, is recorded as rejected; one trained for an
older date than the champion's (a backfill) is recorded as historical. Either way nothing after
it runs: readers keep the last published set, and the champion stays champion.
This file only wires tasks; what they do lives in `plugins/movielens_recs`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference, Param, dag, task

from movielens_recs.config import DEFAULT_DATASET, SINKS, Settings
from movielens_recs.contracts import TrainEvaluateJob
from movielens_recs.datasets.catalog import DATASET_NAME_PATTERN, known_datasets
from movielens_recs.models.params import PREFERENCES, SPLITS, AlsParams
from movielens_recs.models.tuning import MODES
from movielens_recs.orchestration import assets, modeling, publishing, tasks
from movielens_recs.orchestration.notify import on_deadline_missed, on_failure
from movielens_recs.orchestration.spark import (
    ProjectSparkSubmitOperator,
    RecommendOperator,
    TuneOperator,
    ValidateSnapshotOperator,
)

ALS = AlsParams()
SETTINGS = Settings.from_env()
EMPTY = "empty: the dataset's tuned value, else"


def _als_param(key: str, kind: str, description: str, **schema) -> Param:
    """A model param left empty takes the dataset's tuned value (make tune), else the default."""
    default = getattr(ALS, key)
    return Param(None, type=["null", kind], description=f"{description} ({EMPTY} {default})", **schema)


def _gate_param(description: str, **schema) -> Param:
    return Param(None, type=["null", "number"], minimum=0, description=f"gate: {description}", **schema)


@dag(
    dag_id="movielens_recommendations",
    description="Download and validate MovieLens, train ALS on Spark, gate it, publish every user's top N",
    schedule="@daily",
    # from MovieLens' first ratings, so that any past day can be backfilled; with catchup off,
    # unpausing the DAG does not create a run for every day since
    start_date=datetime(1995, 1, 1),
    catchup=False,
    max_active_runs=1,
    # "did the run finish on time": a run unfinished MLRECS_RUN_DEADLINE_SECONDS after it was
    # queued calls the notifier from the triggerer, while the run goes on (0: no deadline)
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(seconds=SETTINGS.run_deadline_seconds),
        callback=AsyncCallback(on_deadline_missed, kwargs={"interval_seconds": SETTINGS.run_deadline_seconds}),
    ) if SETTINGS.run_deadline_seconds > 0 else None,
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
            pattern=DATASET_NAME_PATTERN,
            description=f"MovieLens release to fetch from MLRECS_BASE_URL, e.g. {', '.join(known_datasets())}",
        ),
        "rank": _als_param("rank", "integer", "rating model: ALS latent factors", minimum=1, maximum=500),
        "max_iter": _als_param("max_iter", "integer", "rating model: ALS iterations", minimum=1, maximum=100),
        "reg_param": _als_param("reg_param", "number", "rating model: ALS regularization", minimum=0),
        "nonnegative": _als_param("nonnegative", "boolean", "rating model: non-negative factors"),
        "bias_damping": _als_param("bias_damping", "number", "rating model and bias baseline: damping of the "
                                     "per-user and per-movie biases", minimum=0),
        "ranking_rank": _als_param("ranking_rank", "integer", "ranking model: implicit ALS latent factors",
                                     minimum=1, maximum=1000),
        "ranking_max_iter": _als_param("ranking_max_iter", "integer", "ranking model: iterations",
                                         minimum=1, maximum=100),
        "ranking_reg_param": _als_param("ranking_reg_param", "number", "ranking model: regularization", minimum=0),
        "ranking_alpha": _als_param("ranking_alpha", "number", "ranking model: confidence scale alpha", minimum=0),
        "ranking_preference": _als_param("ranking_preference", "string", "ranking model: rated (every rating "
                                           "a positive) or centered (rating - 2.5)", enum=[None, *PREFERENCES],
                                         values_display={None: "(tuned, else the default)"}),
        "blocks": _als_param("blocks", "integer", "ALS user and item blocks", minimum=1, maximum=1000),
        "seed": _als_param("seed", "integer", "seed of ALS"),
        "split": _als_param("split", "string", "hash (a stable hash of user, movie and salt) or time "
                              "(most recent ratings held out)", enum=[None, *SPLITS],
                            values_display={None: "(tuned, else the default)"}),
        "split_salt": _als_param("split_salt", "string", "salt of the hash split"),
        "test_fraction": _als_param("test_fraction", "number", "share of ratings held out",
                                      exclusiveMinimum=0, exclusiveMaximum=1),
        "tune": Param("off", type="string", enum=list(MODES),
                      description="search the models' params on a validation fold first (quick: minutes on "
                                  "ml-latest-small; full: a wider grid); the best become the dataset's defaults"),
        "k": Param(10, type="integer", minimum=1, maximum=100, description="k of the ranking metrics"),
        "rmse_ceiling": _gate_param("highest RMSE promoted (empty: the dataset's default)"),
        "bias_margin": _gate_param("how much lower than the bias baseline's RMSE must be, e.g. 0.005 = 0.5% "
                                   "(empty: MLRECS_GATE_BIAS_MARGIN or 0.005)", maximum=1),
        "ndcg_multiple": _gate_param("NDCG@k must be at least this multiple of popularity's "
                                     "(empty: MLRECS_GATE_NDCG_MULTIPLE or 1.2)"),
        "coverage_floor": _gate_param("lowest share of the catalog in anyone's top k "
                                      "(empty: MLRECS_GATE_COVERAGE_FLOOR or 0.02)", maximum=1),
        "champion_tolerance": _gate_param("how much worse than the champion's RMSE on the fair set is tolerated "
                                          "(empty: MLRECS_GATE_CHAMPION_TOLERANCE or 1%)", maximum=1),
        "ranking_tolerance": _gate_param("how much lower than the champion's NDCG@k on the fair set is tolerated "
                                         "(empty: MLRECS_GATE_RANKING_TOLERANCE or 2%)", maximum=1),
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

    @task(trigger_rule="none_failed_min_one_success")
    def snapshot_ready(snap: dict) -> dict:
        return tasks.mark_validated(snap)

    # runs whether tune ran or was skipped (tune=off)
    @task(trigger_rule="none_failed_min_one_success")
    def prepare_model(ready: dict, tuning: dict | None, params=None, **context) -> dict:
        return modeling.prepare_model(ready, params, context, tuning)

    @task.short_circuit
    def gate(prepared: dict, params=None, **context) -> bool:
        """Approves or rejects; a rejection skips everything after it (nothing is published)."""
        return modeling.run_gate(prepared, params, context)

    @task(execution_timeout=timedelta(minutes=30), outlets=[assets.PUBLISHED])
    def publish(prepared: dict, params=None, **context) -> dict:
        """Every chosen sink, then the promotion, serialized per dataset across all runs."""
        return publishing.publish(prepared, params, context)

    # Each Spark task builds its job's arguments from its upstream task's XCom (contracts.py).
    snap = snapshot(download())
    validate = ValidateSnapshotOperator(task_id="validate", snapshot=snap, execution_timeout=timedelta(minutes=60))
    ready = snapshot_ready(snap)
    validation_needed(snap) >> [validate, ready]
    validate >> ready
    tune = TuneOperator(task_id="tune", ready=ready, execution_timeout=timedelta(hours=2))
    prepared = prepare_model(ready, tune.output)
    # one Spark application: evaluation runs on the JVMs training warmed; a retry resumes at evaluation
    train_evaluate = ProjectSparkSubmitOperator(task_id="train_evaluate", contract=TrainEvaluateJob,
                                                upstream=prepared, execution_timeout=timedelta(hours=3))
    recommend = RecommendOperator(task_id="recommend", prepared=prepared, execution_timeout=timedelta(hours=1))
    train_evaluate >> gate(prepared) >> recommend
    recommend >> publish(prepared)


movielens_recommendations()
