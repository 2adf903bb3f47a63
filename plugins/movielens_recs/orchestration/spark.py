"""SparkSubmitOperator with the project's code and Spark settings filled in.

Resources and Spark settings come from Settings (MLRECS_SPARK_*), never from literals in the
DAG, so the same DAG runs on the local standalone cluster and on a bigger one. The master and
deploy mode come from the `spark_default` connection, as with any SparkSubmitOperator.
"""

from __future__ import annotations

import sys
from pathlib import Path

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

from movielens_recs.config import Settings
from movielens_recs.orchestration.packaging import build_py_files


def spark_conf(settings: Settings) -> dict[str, str]:
    conf = {
        "spark.executor.cores": str(settings.spark_executor_cores),
        # the driver runs on the Airflow worker in client mode; executors use the same interpreter
        # unless the cluster sets its own
        "spark.pyspark.python": settings.spark_conf.get("spark.pyspark.python", sys.executable),
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.showConsoleProgress": "false",
    }
    conf.update(settings.spark_conf)
    return conf


class ProjectSparkSubmitOperator(SparkSubmitOperator):
    """Submits a job from `spark_jobs/` with the `movielens_recs` package on its path."""

    def __init__(self, *, job: str, **kwargs):
        settings = Settings.from_env()
        kwargs.setdefault("conn_id", "spark_default")
        kwargs.setdefault("name", f"movielens-{job}")
        kwargs.setdefault("driver_memory", settings.spark_driver_memory)
        kwargs.setdefault("executor_memory", settings.spark_executor_memory)
        kwargs.setdefault("conf", spark_conf(settings))
        super().__init__(application=str(settings.project_root / "spark_jobs" / f"{job}.py"), **kwargs)

    def execute(self, context):
        settings = Settings.from_env()
        self.py_files = str(build_py_files(settings.state_dir / "build"))
        return super().execute(context)


def job_path(job: str) -> Path:
    return Settings.from_env().project_root / "spark_jobs" / f"{job}.py"
