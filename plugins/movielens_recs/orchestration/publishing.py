"""Task body of the end of the DAG: publish an approved model's recommendations, then crown it.

Each sink switches its readers atomically (see publish/postgres.py, publish/s3.py). The
registry's champion changes only after every chosen sink has published, so a failed publish
leaves the champion as it was, and a sink that had not switched yet keeps its set; rerunning the
task finishes the job (publishing a version a sink already serves is a no-op there).
"""

from __future__ import annotations

import logging
from datetime import datetime

from airflow.sdk.exceptions import AirflowSkipException

from movielens_recs import lifecycle
from movielens_recs.config import Settings, parse_sinks
from movielens_recs.lake.filesystem import join
from movielens_recs.models.store import ModelLayout
from movielens_recs.orchestration.connections import AWS_CONN_ID, lake_s3_options, postgres_connect
from movielens_recs.orchestration.notify import on_rejection
from movielens_recs.publish import postgres as pg_publish
from movielens_recs.publish import s3 as s3_publish
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


def _to_postgres(settings: Settings, model_version: str, marker: dict, recs, cold) -> dict:
    with postgres_connect() as conn:
        result = pg_publish.publish(conn, recs, cold, model_version, datetime.fromisoformat(marker["generated_at"]),
                                    keep=settings.publish_keep)
    where = f"{settings.db_schema}.{pg_publish.READER_VIEW}"
    log.info("readers of %s now see %s (%d rows, COPY %.0f rows/s, switch %.1f ms)", where, result.model_version,
             result.rows, result.rows_per_second, result.switch_seconds * 1000)
    return {"sink": "postgres", "where": where, "model_version": result.model_version, "rows": result.rows,
            "load_seconds": result.load_seconds, "switch_seconds": result.switch_seconds,
            "dropped_versions": result.dropped_versions, "already_current": result.already_current}


def _to_s3(settings: Settings, model_version: str, marker: dict, recs, cold) -> dict:
    manifest = s3_publish.publish(s3_client(), settings.s3_bucket, settings.s3_prefix, model_version, recs, cold,
                                  datetime.fromisoformat(marker["generated_at"]))
    where = f"s3://{settings.s3_bucket}/{s3_publish.manifest_key(settings.s3_prefix)}"
    log.info("readers following %s now see %s (%d rows)", where, manifest["model_version"], manifest["row_count"])
    return {"sink": "s3", "where": where, "model_version": manifest["model_version"], "rows": manifest["row_count"]}


SINK_WRITERS = {"postgres": _to_postgres, "s3": _to_s3}


def publish(prepared: dict, dag_params: dict, context=None) -> dict:
    """Every chosen sink, then the promotion (lifecycle.publish_and_crown decides; this turns its
    outcome into a skip or a notification)."""
    settings = Settings.from_env()
    chosen = sinks(dag_params, settings)
    marker, recs, cold = recs_output.load(ModelLayout(prepared["model_uri"]).recommendations,
                                          lake_s3_options(settings.lake_uri))

    def to_every_sink() -> list[dict]:
        return [SINK_WRITERS[sink](settings, prepared["model_id"], marker, recs, cold) for sink in chosen]

    with postgres_connect() as conn:
        outcome = lifecycle.publish_and_crown(conn, prepared["model_id"], prepared["champion_id"] or None, to_every_sink)
    log.info("%s", outcome.message)
    if outcome.notify:
        on_rejection(context or {}, outcome.message)
    if not outcome.proceed:
        raise AirflowSkipException(outcome.message)
    return {"model_version": prepared["model_id"], "published": outcome.details["published"],
            "champion": prepared["model_id"], "retired": outcome.details["retired"]}


def reject_for_bad_recommendations(model_id: str, model_uri: str, report: dict) -> str:
    """The recommend job's output failed its suites: the model is rejected, nothing is published."""
    failures = [f["message"] for f in report.get("failures", [])]
    with postgres_connect() as conn:
        outcome = lifecycle.reject_recommendations(
            conn, model_id, failures, join(ModelLayout(model_uri).recommendations, recs_output.REPORT))
    return outcome.message
