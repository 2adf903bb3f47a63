"""Fold new ratings into the served model, between the daily retrains.

datasets (every dataset with a champion) -> fold_in, one mapped task per dataset

Apps record ratings as events (POST /v1/{dataset}/users/{user_id}/ratings, or INSERT as the
writer role). Each run reads a dataset's events since its watermark, solves each affected user's
vectors against the served version's fixed item factors, and replaces just those users' lists,
with the watermark, in one transaction. A failed run moved nothing; its retry, or the next run,
does the same events again. This file only wires tasks; what they do lives in
`plugins/movielens_recs/foldin`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task

from movielens_recs.config import Settings
from movielens_recs.orchestration import folding
from movielens_recs.orchestration.notify import on_failure

SETTINGS = Settings.from_env()


@dag(
    dag_id="movielens_fold_in",
    description="Fold the rating events recorded since the last run into the served model's lists",
    schedule=SETTINGS.fold_in_schedule,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    # two runs would fold the same events; the watermark would refuse the second's work anyway
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=30),
    tags=["movielens", "recommendations", "fold-in"],
    default_args={
        "owner": "ml-platform",
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "on_failure_callback": on_failure,
    },
    params={
        "datasets": Param([], type="array", items={"type": "string"},
                          description="only these datasets (empty: every dataset with a champion)"),
    },
    doc_md=__doc__,
)
def movielens_fold_in():
    @task
    def datasets(params=None) -> list[str]:
        return folding.datasets_to_fold(params)

    @task(execution_timeout=timedelta(minutes=15), max_active_tis_per_dagrun=1)
    def fold_in(dataset: str) -> dict:
        return folding.fold_in(dataset)

    fold_in.expand(dataset=datasets())


movielens_fold_in()
