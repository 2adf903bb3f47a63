"""What the Model history page shows, as one JSON-ready dict per dataset.

It only reads: the registry (every model, its metrics against their baselines and the gate's
rules), each sink's ledger of kept versions and what it serves. A dataset never trained, or a
namespace never published, is an empty history, not an error, and nothing is created for it.
"""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

from psycopg import Connection, sql
from psycopg.rows import dict_row

from movielens_recs.publish import postgres as pg_publish
from movielens_recs.publish.sinks import Namespace, S3Sink, check

# how many of a dataset's newest models the page and its JSON carry
LIMIT = 200


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _figures(metrics: dict | None) -> dict | None:
    """The four figures the gate weighs each model by, each beside its baseline."""
    if not metrics:
        return None
    model = metrics.get("model", {})
    return {
        "k": metrics.get("k"),
        "rmse": model.get("rmse"),
        "bias_rmse": metrics.get("bias", {}).get("rmse"),
        "ndcg_at_k": model.get("ndcg_at_k"),
        "popularity_ndcg_at_k": metrics.get("popularity", {}).get("ndcg_at_k"),
        "coverage": model.get("coverage"),
    }


def _model(row: dict) -> dict:
    decision = row.get("decision") or None
    return {
        "model_id": row["model_id"],
        "status": row["status"],
        "created_at": _iso(row["created_at"]),
        "cutoff": _iso(row["cutoff"]),
        "snapshot_id": row["snapshot_id"],
        "training_rows": row["training_rows"],
        "params": row["params"],
        "dag_run_id": row["dag_run_id"],
        "figures": _figures(row["metrics"]),
        "gate": {"promote": decision.get("promote"), "rules": decision.get("rules", [])} if decision else None,
        "model_uri": row["model_uri"],
    }


def _has_registry(conn: Connection) -> bool:
    """A pipeline that never ran has no registry; reading must not create one."""
    return conn.execute("SELECT to_regclass('model_registry')").fetchone()[0] is not None


def datasets(conn: Connection, known: list[str]) -> list[str]:
    """The `known` releases and every dataset the registry has models of."""
    trained = conn.execute("SELECT DISTINCT dataset FROM model_registry").fetchall() if _has_registry(conn) else []
    return sorted(set(known) | {r[0] for r in trained})


def model(conn: Connection, dataset: str, model_id: str) -> dict | None:
    if not _has_registry(conn):
        return None
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute("SELECT * FROM model_registry WHERE dataset = %s AND model_id = %s",
                          (dataset, model_id)).fetchone()
    return _model(row) if row else None


def models(conn: Connection, dataset: str, limit: int = LIMIT) -> list[dict]:
    """Newest first. `conn` works in the pipeline's schema (where the registry is)."""
    if not _has_registry(conn):
        return []
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute("SELECT * FROM model_registry WHERE dataset = %s ORDER BY created_at DESC LIMIT %s",
                           (dataset, limit)).fetchall()
    return [_model(row) for row in rows]


def postgres_served(conn: Connection, schema: str) -> dict:
    where = f"{schema}.{pg_publish.READER_VIEW}"
    if conn.execute("SELECT to_regclass(%s)", (f"{schema}.{pg_publish.VERSIONS_TABLE}",)).fetchone()[0] is None:
        return {"sink": "postgres", "where": where, "serving": None, "kept": []}
    with conn.transaction():
        conn.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(schema)))
        return {"sink": "postgres", "where": where, "serving": pg_publish.current_version(conn),
                "kept": pg_publish.kept_versions(conn)}


def s3_served(client, bucket: str, prefix: str) -> dict:
    """The S3 sink's own reads, which create nothing (the PostgreSQL sink's create its ledger)."""
    sink = S3Sink(client, bucket, prefix)
    return {"sink": sink.name, "where": sink.where, "serving": sink.served(), "kept": sink.kept()}


def rollback_command(dataset: str, version: str) -> str:
    return f"make rollback DATASET={dataset} VERSION={version}"


def history(conn: Connection, s3_client, bucket: str, namespace: Namespace, datasets: list[str]) -> dict:
    """Everything about one dataset the page shows; `datasets` lists those to link to."""
    dataset = namespace.dataset
    rows = models(conn, dataset)
    champion = next((m["model_id"] for m in rows if m["status"] == "champion"), None)
    sinks = [postgres_served(conn, namespace.pg_schema), s3_served(s3_client, bucket, namespace.s3_prefix)]
    for sink in sinks:
        sink["rollback"] = [{"version": v, "command": rollback_command(dataset, v)}
                            for v in sink["kept"] if v != sink["serving"]]
    problems = check([SimpleNamespace(name=s["sink"], where=s["where"]) for s in sinks], champion,
                     {s["sink"]: s["serving"] for s in sinks})
    return {"dataset": dataset, "datasets": datasets, "champion": champion, "models": rows, "sinks": sinks,
            "problems": problems}
