"""SparkSubmitOperator with the project's code and Spark settings filled in.

Resources and Spark settings come from Settings (MLRECS_SPARK_*), never from literals in the
DAG, so the same DAG runs on the local standalone cluster and on a bigger one. The master and
deploy mode come from the `spark_default` connection, as with any SparkSubmitOperator.
"""

from __future__ import annotations

import re

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from movielens_recs.config import Settings
from movielens_recs.errors import EXIT_BAD_INPUT
from movielens_recs.lake.filesystem import join
from movielens_recs.models.store import read_json
from movielens_recs.orchestration.connections import lake_s3_options
from movielens_recs.spark_submit import build_py_files, job_path, spark_conf

_EXIT_CODE = re.compile(r"Error code is: (-?\d+)")


class ProjectSparkSubmitOperator(SparkSubmitOperator):
    """Submits a job from `spark_jobs/` with the `movielens_recs` package on its path.

    A job that exits with EXIT_BAD_INPUT rejected its input: the task fails at once, without
    the retries meant for a flaky cluster, with `explain_bad_input()` as its error.
    """

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
        try:
            return super().execute(context)
        except AirflowException as exc:
            match = _EXIT_CODE.search(str(exc))
            if match and int(match[1]) == EXIT_BAD_INPUT:
                raise AirflowFailException(self.explain_bad_input(context)) from exc
            raise

    def explain_bad_input(self, context) -> str:
        return f"{self.task_id}: the Spark job rejected its input (exit code {EXIT_BAD_INPUT}); see the log above"


class ValidateSnapshotOperator(ProjectSparkSubmitOperator):
    """Runs spark_jobs/validate_snapshot.py; a failure's error lists every broken expectation."""

    def __init__(self, *, report_uri: str, **kwargs):
        super().__init__(job="validate_snapshot", **kwargs)
        self.report_uri = report_uri

    template_fields = (*ProjectSparkSubmitOperator.template_fields, "report_uri")

    def explain_bad_input(self, context) -> str:
        settings = Settings.from_env()
        try:
            report = read_json(self.report_uri, lake_s3_options(settings.lake_uri))
        except Exception as exc:  # the report is a convenience; the log has the same lines
            return f"snapshot failed validation (report {self.report_uri} unreadable: {exc})"
        lines = [f"snapshot {report['dataset']}/{report['snapshot_id']} failed validation:"]
        lines += [f"  - {failure['message']}" for failure in report["failures"]]
        if report.get("data_docs_index"):
            lines.append(f"  Data Docs: {report['data_docs_index']}")
        return "\n".join(lines)


class RecommendOperator(ProjectSparkSubmitOperator):
    """Runs spark_jobs/recommend.py; output that fails its suites rejects the model in the registry."""

    template_fields = (*ProjectSparkSubmitOperator.template_fields, "model_id", "model_uri")

    def __init__(self, *, model_id: str, model_uri: str, **kwargs):
        super().__init__(job="recommend", **kwargs)
        self.model_id = model_id
        self.model_uri = model_uri

    def explain_bad_input(self, context) -> str:
        from movielens_recs.orchestration.publishing import reject_for_bad_recommendations
        from movielens_recs.recommend.output import REPORT, output_uri

        settings = Settings.from_env()
        report_uri = join(output_uri(self.model_uri), REPORT)
        try:
            report = read_json(report_uri, lake_s3_options(settings.lake_uri))
        except Exception as exc:  # still reject: the job said its output is bad
            report = {"failures": [{"message": f"report {report_uri} unreadable: {exc}"}]}
        return reject_for_bad_recommendations(self.model_id, self.model_uri, report)


class TuneOperator(ProjectSparkSubmitOperator):
    """Runs spark_jobs/tune_als.py when the run's `tune` param asks for it, else skips (the
    tasks after it run regardless). Its argv is built here from the snapshot and the run's
    params; it returns where the search's trail was written, for prepare_model to record."""

    template_fields = (*ProjectSparkSubmitOperator.template_fields, "ready")

    def __init__(self, *, ready, **kwargs):
        super().__init__(job="tune_als", **kwargs)
        self.ready = ready

    def execute(self, context):
        import json
        import re

        from airflow.sdk.exceptions import AirflowSkipException

        from movielens_recs.models.params import AlsParams
        from movielens_recs.orchestration.modeling import cutoff_for

        params = context["params"]
        mode = params.get("tune") or "off"
        if mode == "off":
            raise AirflowSkipException("tune is off: the dataset's tuned params (or the defaults) are used")
        settings = Settings.from_env()
        base = AlsParams.from_dict({k: params.get(k) for k in AlsParams.field_names()})
        run_key = re.sub(r"[^A-Za-z0-9._-]+", "_", context["run_id"])
        output = join(settings.model_store_uri, self.ready["dataset"], "_tuning", run_key, "tuning.json")
        self.application_args = [
            "--ratings", self.ready["ratings_spark_uri"], "--dataset", self.ready["dataset"], "--mode", mode,
            "--params", json.dumps(base.as_dict()), "--output-uri", output,
            "--cutoff", cutoff_for(context).isoformat(), "--k", str(params.get("k") or 10),
            "--checkpoint-dir", settings.checkpoint_dir,
        ]
        super().execute(context)
        return {"mode": mode, "output_uri": output}
