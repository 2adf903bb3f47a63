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

from movielens_recs import registry
from movielens_recs.config import Settings, parse_sinks
from movielens_recs.gate import overruled
from movielens_recs.lake.filesystem import join
from movielens_recs.orchestration.connections import AWS_CONN_ID, lake_s3_options, postgres_connect
from movielens_recs.orchestration.modeling import historical_decision
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


def _refuse_stale(conn, prepared: dict, candidate: dict, champion: dict | None, context) -> None:
    """Another run may have promoted a model while this one was evaluated: never publish over a
    newer model, nor over one this model was not measured against."""
    if registry.is_older_than(candidate, champion):
        registry.mark_historical(conn, prepared["model_id"], historical_decision(candidate["decision"], champion))
        raise AirflowSkipException(f"champion {champion['model_id']} was promoted meanwhile on later data: "
                                   f"{prepared['model_id']} is historical, nothing published")
    now = champion["model_id"] if champion else ""
    if now != prepared["champion_id"]:
        registry.reject(conn, prepared["model_id"], overruled(
            candidate["decision"], "champion_unchanged",
            f"measured against {prepared['champion_id'] or 'no champion'}, but {now or 'none'} became "
            "champion meanwhile; the next run compares against it"))
        message = (f"model {prepared['model_id']} not published: the champion changed from "
                   f"{prepared['champion_id'] or 'none'} to {now or 'none'} while it was evaluated")
        on_rejection(context or {}, message)
        raise AirflowSkipException(message)


def publish(prepared: dict, dag_params: dict, context=None) -> dict:
    """Publish to every chosen sink, then crown the model: one critical section per dataset,
    under the registry's publication lock, so no two runs (scheduled, manual or backfill) can
    interleave their publications and promotions."""
    settings = Settings.from_env()
    chosen = sinks(dag_params, settings)
    output = recs_output.output_uri(prepared["model_uri"])
    marker, recs, cold = recs_output.load(output, lake_s3_options(settings.lake_uri))
    with postgres_connect() as conn, registry.publication_lock(conn, prepared["dataset"]):
        candidate = registry.get(conn, prepared["model_id"])
        champion = registry.champion(conn, prepared["dataset"])
        if candidate["status"] == "champion":  # a rerun after the promotion: make sure every sink has it
            log.info("%s is already champion: publishing again is a no-op where it is served", prepared["model_id"])
        elif candidate["status"] != "approved":
            raise AirflowSkipException(f"{prepared['model_id']} is {candidate['status']}, not approved: nothing to publish")
        else:
            _refuse_stale(conn, prepared, candidate, champion, context)
        published = [SINK_WRITERS[sink](settings, prepared["model_id"], marker, recs, cold) for sink in chosen]
        retired = None
        if candidate["status"] != "champion":
            retired = registry.promote(conn, prepared["model_id"], None, prepared["champion_id"] or None)
            log.info("promoted %s to champion of %s%s", prepared["model_id"], prepared["dataset"],
                     f", retiring {retired}" if retired else "")
    return {"model_version": prepared["model_id"], "published": published, "champion": prepared["model_id"],
            "retired": retired}


def reject_for_bad_recommendations(model_id: str, model_uri: str, report: dict) -> str:
    """The recommend job's output failed its suites: the model is rejected, nothing is published."""
    failures = [f["message"] for f in report.get("failures", [])]
    with postgres_connect() as conn:
        row = registry.get(conn, model_id)
        registry.reject(conn, model_id, overruled((row or {}).get("decision"), "recommendations_valid",
                                                  "; ".join(failures) or "the recommendations failed validation"))
    lines = [f"recommendations of {model_id} failed validation; model rejected, nothing published:"]
    lines += [f"  - {message}" for message in failures]
    lines.append(f"  report: {join(recs_output.output_uri(model_uri), recs_output.REPORT)}")
    return "\n".join(lines)
