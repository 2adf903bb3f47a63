"""Task body of the end of the DAG: publish an approved model's recommendations, then crown it.

Each sink switches its readers atomically, and publish/sinks.py keeps them in step: when one
fails, those already switched go back to the champion's set. The registry's champion changes
only after every chosen sink has published, so a failed publish leaves the champion and what
readers see as they were; rerunning the task finishes the job (publishing a version a sink
already serves is a no-op there).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import datetime

from airflow.sdk.exceptions import AirflowSkipException

from movielens_recs import lifecycle
from movielens_recs.config import Settings, parse_sinks
from movielens_recs.lake.filesystem import join
from movielens_recs.models.store import ModelLayout
from movielens_recs.orchestration import assets
from movielens_recs.orchestration.connections import AWS_CONN_ID, lake_s3_options, postgres_connect
from movielens_recs.orchestration.folding import prepare_events
from movielens_recs.orchestration.notify import on_rejection
from movielens_recs.publish import sinks as sinks_
from movielens_recs.recommend import output as recs_output

log = logging.getLogger(__name__)


def sinks(dag_params: dict, settings: Settings) -> tuple[str, ...]:
    """The run's `sinks` param, else MLRECS_PUBLISH_SINKS (default: both)."""
    chosen = dag_params.get("sinks")
    return parse_sinks(chosen) if chosen else settings.publish_sinks


def s3_client(conn_id: str = AWS_CONN_ID):
    """boto3 from the Amazon provider's hook, so endpoint, keys and region come from the connection."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=conn_id).get_conn()


@contextmanager
def open_sinks(settings: Settings, dataset: str, chosen: tuple[str, ...]):
    """The chosen sinks of the dataset's namespace, in the order they switch: PostgreSQL on a
    connection of its own that works in the namespace's schema, S3 through the hook."""
    namespace = sinks_.Namespace(dataset, settings.db_schema, settings.s3_prefix)
    with postgres_connect(schema=namespace.pg_schema) as conn:
        build = {"postgres": lambda: sinks_.PostgresSink(conn, namespace.pg_schema, settings.publish_keep,
                                                         settings.db_reader_role),
                 "s3": lambda: sinks_.S3Sink(s3_client(), settings.s3_bucket, namespace.s3_prefix)}
        yield [build[name]() for name in chosen]


def publish(prepared: dict, dag_params: dict, context=None) -> dict:
    """Every chosen sink, then the promotion (lifecycle.publish_and_crown decides; this turns its
    outcome into a skip or a notification)."""
    settings = Settings.from_env()
    chosen = sinks(dag_params, settings)
    marker, recs, cold = recs_output.load(ModelLayout(prepared["model_uri"]).recommendations,
                                          lake_s3_options(settings.lake_uri))

    generated_at = datetime.fromisoformat(marker["generated_at"])
    if "postgres" in chosen:
        # apps may record ratings for the fold-in once a version is served (foldin/events.py)
        prepare_events(settings, prepared["dataset"], prepared["snapshot_id"])
    with postgres_connect(settings.db_schema) as conn, open_sinks(settings, prepared["dataset"], chosen) as targets:
        outcome = lifecycle.publish_and_crown(
            conn, prepared["model_id"], prepared["champion_id"] or None,
            lambda: sinks_.publish(targets, prepared["model_id"], recs, cold, generated_at))
    log.info("%s", outcome.message)
    if outcome.notify:
        on_rejection(context or {}, outcome.message)
    if not outcome.proceed:
        raise AirflowSkipException(outcome.message)
    if context and context.get("outlet_events") is not None:
        assets.emit(context["outlet_events"], settings, prepared["dataset"], outcome.details["published"])
    return {"model_version": prepared["model_id"], "published": outcome.details["published"],
            "champion": prepared["model_id"], "retired": outcome.details["retired"]}


def reject_for_bad_recommendations(settings: Settings, model_id: str, model_uri: str, report: dict) -> str:
    """The recommend job's output failed its suites: the model is rejected, nothing is published."""
    failures = [f["message"] for f in report.get("failures", [])]
    with postgres_connect(settings.db_schema) as conn:
        outcome = lifecycle.reject_recommendations(
            conn, model_id, failures, join(ModelLayout(model_uri).recommendations, recs_output.REPORT))
    return outcome.message
