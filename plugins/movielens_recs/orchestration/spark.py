"""SparkSubmitOperator with the project's code and Spark settings filled in.

Resources and Spark settings come from Settings (MLRECS_SPARK_*), never from literals in the
DAG, so the same DAG runs on the local standalone cluster and on a bigger one. The master and
deploy mode come from the `spark_default` connection, as with any SparkSubmitOperator.
"""

from __future__ import annotations

import re
from functools import cached_property

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from movielens_recs.config import Settings
from movielens_recs.contracts import REJECTED, JobContract, RecommendJob, TuneJob, ValidateJob
from movielens_recs.errors import EXIT_BAD_INPUT
from movielens_recs.lake.filesystem import join, read_json
from movielens_recs.orchestration.connections import lake_s3_options
from movielens_recs.spark_submit import build_py_files, job_path, spark_conf

_EXIT_CODE = re.compile(r"Error code is: (-?\d+)")


class ProjectSparkSubmitOperator(SparkSubmitOperator):
    """Submits a job from `spark_jobs/` with the `movielens_recs` package on its path.

    Given a `contract` (contracts.py) and the `upstream` task's XCom, it builds the job's argv at
    run time with `contract.from_upstream(...).to_argv()`; given only `job`, it submits
    `application_args` as they are. A job that exits with EXIT_BAD_INPUT rejected its input: the
    task fails at once, without the retries meant for a flaky cluster, with
    `explain_bad_input()` as its error.
    """

    template_fields = (*SparkSubmitOperator.template_fields, "upstream")

    def __init__(self, *, job: str | None = None, contract: type[JobContract] | None = None, upstream=None,
                 **kwargs):
        settings = Settings.from_env()
        job = contract.JOB if contract is not None else job
        kwargs.setdefault("conn_id", "spark_default")
        kwargs.setdefault("name", f"movielens-{job}")
        kwargs.setdefault("driver_memory", settings.spark_driver_memory)
        kwargs.setdefault("executor_memory", settings.spark_executor_memory)
        kwargs.setdefault("conf", spark_conf(settings))
        super().__init__(application=str(job_path(settings, job)), **kwargs)
        self.contract = contract
        self.upstream = upstream
        self.submitted: JobContract | None = None  # the arguments of the last execute, for its error

    @cached_property
    def settings(self) -> Settings:
        """Read once per task, where it runs (the worker's environment, not the parser's)."""
        return Settings.from_env()

    def job_args(self, context) -> JobContract | None:
        if self.contract is None:
            return None
        return self.contract.from_upstream(self.upstream, context, self.settings)

    def execute(self, context):
        args = self.job_args(context)
        if args is not None:
            self.application_args = args.to_argv()
        self.submitted = args
        self.py_files = str(build_py_files(self.settings.state_dir / "build"))
        try:
            return super().execute(context)
        except AirflowException as exc:
            match = _EXIT_CODE.search(str(exc))
            if match and int(match[1]) == EXIT_BAD_INPUT:
                raise AirflowFailException(self.explain_bad_input(context)) from exc
            raise

    def explain_bad_input(self, context) -> str:
        what = self.submitted.bad_input() if self.submitted is not None else REJECTED
        return f"{self.task_id}: {what} (exit code {EXIT_BAD_INPUT}); see the log above"


class ValidateSnapshotOperator(ProjectSparkSubmitOperator):
    """Runs spark_jobs/validate_snapshot.py on the snapshot task's output; a failure's error lists
    every broken expectation."""

    def __init__(self, *, snapshot, **kwargs):
        super().__init__(contract=ValidateJob, upstream=snapshot, **kwargs)

    def explain_bad_input(self, context) -> str:
        report_uri = self.upstream["report_uri"]
        try:
            report = read_json(report_uri, lake_s3_options(self.settings.lake_uri))
        except Exception as exc:  # the report is a convenience; the log has the same lines
            return f"snapshot failed validation (report {report_uri} unreadable: {exc})"
        lines = [f"snapshot {report['dataset']}/{report['snapshot_id']} failed validation:"]
        lines += [f"  - {failure['message']}" for failure in report["failures"]]
        if report.get("data_docs_index"):
            lines.append(f"  Data Docs: {report['data_docs_index']}")
        return "\n".join(lines)


class RecommendOperator(ProjectSparkSubmitOperator):
    """Runs spark_jobs/recommend.py for prepare_model's model; output that fails its suites
    rejects the model in the registry."""

    def __init__(self, *, prepared, **kwargs):
        super().__init__(contract=RecommendJob, upstream=prepared, **kwargs)

    def explain_bad_input(self, context) -> str:
        from movielens_recs.orchestration.publishing import reject_for_bad_recommendations
        from movielens_recs.recommend.output import REPORT, output_uri

        model_id, model_uri = self.upstream["model_id"], self.upstream["model_uri"]
        report_uri = join(output_uri(model_uri), REPORT)
        try:
            report = read_json(report_uri, lake_s3_options(self.settings.lake_uri))
        except Exception as exc:  # still reject: the job said its output is bad
            report = {"failures": [{"message": f"report {report_uri} unreadable: {exc}"}]}
        return reject_for_bad_recommendations(self.settings, model_id, model_uri, report)


class TuneOperator(ProjectSparkSubmitOperator):
    """Runs spark_jobs/tune_als.py when the run's `tune` param asks for it, else skips (the
    tasks after it run regardless). It returns where the search's trail was written, for
    prepare_model to record."""

    def __init__(self, *, ready, **kwargs):
        super().__init__(contract=TuneJob, upstream=ready, **kwargs)

    def execute(self, context):
        from airflow.sdk.exceptions import AirflowSkipException

        args = self.job_args(context)
        if args.mode == "off":
            raise AirflowSkipException("tune is off: the dataset's tuned params (or the defaults) are used")
        super().execute(context)
        return {"mode": args.mode, "output_uri": args.output_uri}
