"""SparkSubmitOperator with the project's code and Spark settings filled in.

Resources and Spark settings come from Settings (MLRECS_SPARK_*), never from literals in the
DAG, so the same DAG runs on the local standalone cluster and on a bigger one. The master and
deploy mode come from the `spark_default` connection, as with any SparkSubmitOperator.
"""

from __future__ import annotations

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

from movielens_recs.config import Settings
from movielens_recs.spark_submit import build_py_files, job_path, spark_conf


class ProjectSparkSubmitOperator(SparkSubmitOperator):
    """Submits a job from `spark_jobs/` with the `movielens_recs` package on its path."""

    def __init__(self, *, job: str, **kwargs):
        settings = Settings.from_env()
        kwargs.setdefault("conn_id", "spark_default")
        kwargs.setdefault("name", f"movielens-{job}")
        kwargs.setdefault("driver_memory", settings.spark_driver_memory)
        kwargs.setdefault("executor_memory", settings.spark_executor_memory)
        kwargs.setdefault("conf", spark_conf(settings))
        super().__init__(application=str(job_path(settings, job)), **kwargs)

    def execute(self, context):
        settings = Settings.from_env()
        self.py_files = str(build_py_files(settings.state_dir / "build"))
        return super().execute(context)

