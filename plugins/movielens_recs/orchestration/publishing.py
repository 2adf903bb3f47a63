"""Task bodies of the end of the DAG: publish an approved model's recommendations, then crown it.

Each sink switches its readers atomically on its own (see publish/postgres.py, publish/s3.py).
The registry's champion changes only after every configured sink has published, so a failed
publish leaves both the served set and the champion as they were; rerunning the failed task
finishes the job (publishing a version already served is a no-op).
"""

from __future__ import annotations

import logging
from datetime import datetime

from airflow.sdk.exceptions import AirflowSkipException

from movielens_recs import registry
from movielens_recs.config import Settings, parse_sinks
from movielens_recs.lake.filesystem import join
from movielens_recs.orchestration.connections import AWS_CONN_ID, lake_s3_options, postgres_connect
from movielens_recs.publish import postgres as pg_publish
from movielens_recs.publish import s3 as s3_publish
from movielens_recs.recommend import output as recs_output

log = logging.getLogger(__name__)


def sinks(dag_params: dict, settings: Settings) -> tuple[str, ...]:
    """The run's `sinks` param, else MLRECS_PUBLISH_SINKS (default: both)."""
    chosen = dag_params.get("sinks")
    return parse_sinks(chosen) if chosen else settings.publish_sinks


def _load(prepared: dict, settings: Settings):
    output = recs_output.output_uri(prepared["model_uri"])
    return recs_output.load(output, lake_s3_options(settings.lake_uri))


def s3_client(conn_id: str = AWS_CONN_ID):
    """boto3 from the Amazon provider's hook, so endpoint, keys and region come from the connection."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=conn_id).get_conn()


def publish_postgres(prepared: dict, dag_params: dict) -> dict:
    settings = Settings.from_env()
    if "postgres" not in sinks(dag_params, settings):
        raise AirflowSkipException("PostgreSQL is not among this run's sinks")
    marker, recs, cold = _load(prepared, settings)
    with postgres_connect() as conn:
        result = pg_publish.publish(conn, recs, cold, prepared["model_id"],
                                    datetime.fromisoformat(marker["generated_at"]), keep=settings.publish_keep)
    where = f"{settings.db_schema}.{pg_publish.READER_VIEW}"
    log.info("readers of %s now see %s (%d rows, COPY %.0f rows/s, switch %.1f ms)", where, result.model_version,
             result.rows, result.rows_per_second, result.switch_seconds * 1000)
    return {"sink": "postgres", "where": where, "model_version": result.model_version, "rows": result.rows,
            "load_seconds": result.load_seconds, "switch_seconds": result.switch_seconds,
            "dropped_versions": result.dropped_versions, "already_current": result.already_current}


def publish_s3(prepared: dict, dag_params: dict) -> dict:
    settings = Settings.from_env()
    if "s3" not in sinks(dag_params, settings):
        raise AirflowSkipException("S3 is not among this run's sinks")
    marker, recs, cold = _load(prepared, settings)
    manifest = s3_publish.publish(s3_client(), settings.s3_bucket, settings.s3_prefix, prepared["model_id"], recs, cold,
                                  datetime.fromisoformat(marker["generated_at"]))
    where = f"s3://{settings.s3_bucket}/{s3_publish.manifest_key(settings.s3_prefix)}"
    log.info("readers following %s now see %s (%d rows)", where, manifest["model_version"], manifest["row_count"])
    return {"sink": "s3", "where": where, "model_version": manifest["model_version"], "rows": manifest["row_count"]}


def promote(prepared: dict) -> dict:
    """Crown the model whose recommendations are now served."""
    with postgres_connect() as conn:
        retired = registry.promote(conn, prepared["model_id"], None, prepared["champion_id"] or None)
    log.info("promoted %s to champion of %s%s", prepared["model_id"], prepared["dataset"],
             f", retiring {retired}" if retired else "")
    return {"champion": prepared["model_id"], "retired": retired}


def reject_for_bad_recommendations(model_id: str, model_uri: str, report: dict) -> str:
    """The recommend job's output failed its suites: the model is rejected, nothing is published."""
    failures = [f["message"] for f in report.get("failures", [])]
    with postgres_connect() as conn:
        row = registry.get(conn, model_id)
        decision = dict((row or {}).get("decision") or {"rules": []})
        decision["promote"] = False
        decision["rules"] = [*decision.get("rules", []), {
            "name": "recommendations_valid", "passed": False, "value": None, "threshold": None,
            "detail": "; ".join(failures) or "the recommendations failed validation",
        }]
        registry.reject(conn, model_id, decision)
    lines = [f"recommendations of {model_id} failed validation; model rejected, nothing published:"]
    lines += [f"  - {message}" for message in failures]
    lines.append(f"  report: {join(recs_output.output_uri(model_uri), recs_output.REPORT)}")
    return "\n".join(lines)
