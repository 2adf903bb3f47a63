"""The model registry: one row per trained model, in the stack's PostgreSQL.

At most one champion per dataset at any time is guaranteed by the database itself (a partial
unique index), not only by this code. Each MovieLens release is its own id space, so each has
its own champion. Promotion retires the old champion and crowns the new one in a single
transaction: both happen or neither does.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

# candidate: registered, being trained and evaluated; approved: passed the gate, its
# recommendations are being computed and published; champion: published and served;
# historical: trained for an older logical date than the champion's (a backfill), kept on
# record but never promoted or published.
STATUSES = ("candidate", "approved", "champion", "rejected", "retired", "historical")
DECIDED = ("champion", "retired", "historical")

SCHEMA = """
CREATE TABLE IF NOT EXISTS model_registry (
    model_id      text PRIMARY KEY,
    dataset       text NOT NULL,
    dag_run_id    text,
    logical_date  timestamptz,
    snapshot_id   text NOT NULL,
    cutoff        timestamptz,
    training_rows bigint,
    params        jsonb NOT NULL DEFAULT '{}'::jsonb,
    metrics       jsonb,
    model_uri     text NOT NULL,
    status        text NOT NULL DEFAULT 'candidate'
                  CONSTRAINT model_registry_status_check
                  CHECK (status IN ('candidate', 'approved', 'champion', 'rejected', 'retired', 'historical')),
    decision      jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    evaluated_at  timestamptz,
    decided_at    timestamptz,
    promoted_at   timestamptz,
    retired_at    timestamptz
);
-- The guarantee: a second champion for the same dataset cannot be written, by any client.
CREATE UNIQUE INDEX IF NOT EXISTS model_registry_one_champion
    ON model_registry (dataset) WHERE status = 'champion';
CREATE INDEX IF NOT EXISTS model_registry_by_dataset ON model_registry (dataset, created_at DESC);
-- registries created by earlier versions get the newer columns and statuses
ALTER TABLE model_registry ADD COLUMN IF NOT EXISTS cutoff timestamptz;
ALTER TABLE model_registry ADD COLUMN IF NOT EXISTS training_rows bigint;
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = 'model_registry'::regclass
                   AND contype = 'c' AND pg_get_constraintdef(oid) LIKE '%historical%') THEN
        ALTER TABLE model_registry DROP CONSTRAINT IF EXISTS model_registry_status_check;
        ALTER TABLE model_registry ADD CONSTRAINT model_registry_status_check
            CHECK (status IN ('candidate', 'approved', 'champion', 'rejected', 'retired', 'historical'));
    END IF;
END $$;
-- Hyperparameter searches: the best params of the newest one are the dataset's defaults.
CREATE TABLE IF NOT EXISTS tuning_runs (
    id            bigserial PRIMARY KEY,
    dataset       text NOT NULL,
    mode          text NOT NULL,
    dag_run_id    text,
    snapshot_id   text,
    cutoff        timestamptz,
    best_params   jsonb NOT NULL,
    result        jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS tuning_runs_by_dataset ON tuning_runs (dataset, created_at DESC);
-- a rerun of the task that records a run's search replaces its row instead of adding one
CREATE UNIQUE INDEX IF NOT EXISTS tuning_runs_one_per_run ON tuning_runs (dataset, dag_run_id)
    WHERE dag_run_id IS NOT NULL;
"""


class RegistryError(RuntimeError):
    pass


class AlreadyDecided(RegistryError):
    """The model was promoted, retired or recorded as historical by an earlier run."""


@dataclass(frozen=True)
class ModelRecord:
    model_id: str
    dataset: str
    snapshot_id: str
    model_uri: str
    params: dict
    dag_run_id: str | None = None
    logical_date: datetime | None = None
    cutoff: datetime | None = None


def ensure_schema(conn: Connection) -> None:
    with conn.transaction():
        # serialize concurrent first runs creating the table
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('model_registry_schema'))")
        conn.execute(SCHEMA)


def register(conn: Connection, record: ModelRecord) -> dict:
    """Insert a candidate. A rerun of the same model id (same dataset, logical date, snapshot and
    params) resets it and trains again, unless it was decided for good (DECIDED): then
    AlreadyDecided is raised and the rerun has nothing to do."""
    with conn.transaction():
        row = conn.execute(
            """
            INSERT INTO model_registry (model_id, dataset, dag_run_id, logical_date, snapshot_id, cutoff, params, model_uri)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (model_id) DO UPDATE
               SET dag_run_id = EXCLUDED.dag_run_id, params = EXCLUDED.params, cutoff = EXCLUDED.cutoff,
                   model_uri = EXCLUDED.model_uri, metrics = NULL, decision = NULL, training_rows = NULL,
                   evaluated_at = NULL, decided_at = NULL
             WHERE model_registry.status IN ('candidate', 'rejected', 'approved')
            RETURNING *
            """,
            (record.model_id, record.dataset, record.dag_run_id, record.logical_date, record.snapshot_id,
             record.cutoff, Jsonb(record.params), record.model_uri),
        ).fetchone()
        if row is None:
            status = get(conn, record.model_id)["status"]
            raise AlreadyDecided(f"model {record.model_id} is already {status}; it will not be trained over")
        conn.execute("UPDATE model_registry SET status = 'candidate' WHERE model_id = %s", (record.model_id,))
    return get(conn, record.model_id)


def get(conn: Connection, model_id: str) -> dict | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT * FROM model_registry WHERE model_id = %s", (model_id,)).fetchone()


def champion(conn: Connection, dataset: str) -> dict | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT * FROM model_registry WHERE dataset = %s AND status = 'champion'", (dataset,)
        ).fetchone()


def champion_datasets(conn: Connection) -> list[str]:
    ensure_schema(conn)
    return [r[0] for r in conn.execute(
        "SELECT dataset FROM model_registry WHERE status = 'champion' ORDER BY dataset").fetchall()]


def history(conn: Connection, dataset: str, limit: int = 20) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT * FROM model_registry WHERE dataset = %s ORDER BY created_at DESC LIMIT %s", (dataset, limit)
        ).fetchall()


def record_metrics(conn: Connection, model_id: str, metrics: dict, training_rows: int | None = None) -> None:
    with conn.transaction():
        updated = conn.execute(
            """UPDATE model_registry SET metrics = %s, training_rows = coalesce(%s, training_rows), evaluated_at = now()
               WHERE model_id = %s AND status = 'candidate'""",
            (Jsonb(metrics), training_rows, model_id),
        ).rowcount
    if updated != 1:
        raise RegistryError(f"no candidate {model_id} to record metrics for")


def _decide(conn: Connection, model_id: str, status: str, decision: dict, from_statuses: tuple[str, ...]) -> None:
    """Record a decision as one guarded transition: only from `from_statuses`, or an error."""
    with conn.transaction():
        updated = conn.execute(
            """UPDATE model_registry SET status = %s, decision = %s, decided_at = now()
               WHERE model_id = %s AND status = ANY(%s)""",
            (status, Jsonb(decision), model_id, list(from_statuses)),
        ).rowcount
    if updated != 1:
        raise RegistryError(f"no candidate {model_id} to mark {status} (it must be {' or '.join(from_statuses)})")


def reject(conn: Connection, model_id: str, decision: dict) -> None:
    """By the gate (a candidate), or later when its recommendations fail validation (approved)."""
    _decide(conn, model_id, "rejected", decision, ("candidate", "approved"))


def mark_historical(conn: Connection, model_id: str, decision: dict) -> None:
    """Trained for an older logical date than the champion's: on record, never promoted."""
    _decide(conn, model_id, "historical", decision, ("candidate", "approved"))


def approve(conn: Connection, model_id: str, decision: dict) -> None:
    """Passed the gate. It becomes champion only once its recommendations are published, so
    that the champion is always the model whose recommendations readers see."""
    _decide(conn, model_id, "approved", decision, ("candidate",))


def promote(conn: Connection, model_id: str, decision: dict | None, expected_champion: str | None) -> str | None:
    """Make `model_id` its dataset's champion; returns the retired champion's id.

    `expected_champion` is the champion the candidate was measured against: if another run
    promoted a different model in the meantime, the comparison is stale and nothing changes.
    """
    with conn.transaction():
        candidate = conn.execute(
            "SELECT dataset, cutoff FROM model_registry WHERE model_id = %s AND status IN ('candidate', 'approved') FOR UPDATE",
            (model_id,),
        ).fetchone()
        if candidate is None:
            raise RegistryError(f"no candidate {model_id} to promote")
        dataset, cutoff = candidate
        # one promotion per dataset at a time; the unique index is the last line of defence
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('model_registry_champion:' || %s))", (dataset,))
        current = conn.execute(
            "SELECT model_id, cutoff FROM model_registry WHERE dataset = %s AND status = 'champion' FOR UPDATE",
            (dataset,),
        ).fetchone()
        current_id = current[0] if current else None
        # the lifecycle never asks for this (lifecycle.older_than_champion); the registry refuses it
        # whatever the client, as it refuses a second champion
        if current and current[1] and cutoff and cutoff < current[1]:
            raise RegistryError(
                f"{model_id} was trained on data up to {cutoff:%Y-%m-%d %H:%M}, before champion {current_id} "
                f"({current[1]:%Y-%m-%d %H:%M}): an older model never replaces a newer one"
            )
        if current_id != expected_champion:
            raise RegistryError(
                f"the champion of {dataset} changed from {expected_champion} to {current_id} while "
                f"{model_id} was evaluated; evaluate again"
            )
        if current_id is not None:
            conn.execute(
                "UPDATE model_registry SET status = 'retired', retired_at = now() WHERE model_id = %s",
                (current_id,),
            )
        conn.execute(
            """UPDATE model_registry SET status = 'champion', decision = coalesce(%s, decision),
                      decided_at = coalesce(decided_at, now()), promoted_at = now()
               WHERE model_id = %s""",
            (Jsonb(decision) if decision is not None else None, model_id),
        )
    return current_id


@contextmanager
def publication_lock(conn: Connection, dataset: str):
    """Serializes publishing and promotion per dataset across every run (scheduled, manual,
    backfill, even other deployments): held on `conn`'s session, so a worker that dies
    releases it with its connection."""
    conn.execute("SELECT pg_advisory_lock(hashtext('model_registry_publish:' || %s))", (dataset,))
    try:
        yield
    finally:
        conn.execute("SELECT pg_advisory_unlock(hashtext('model_registry_publish:' || %s))", (dataset,))


def record_tuning(conn: Connection, dataset: str, mode: str, best_params: dict, result: dict,
                  dag_run_id: str | None = None, snapshot_id: str | None = None, cutoff: datetime | None = None) -> int:
    """Store a search and its trail of trials; its best params become the dataset's defaults."""
    with conn.transaction():
        return conn.execute(
            """INSERT INTO tuning_runs (dataset, mode, dag_run_id, snapshot_id, cutoff, best_params, result)
               VALUES (%s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (dataset, dag_run_id) WHERE dag_run_id IS NOT NULL DO UPDATE
                  SET mode = EXCLUDED.mode, snapshot_id = EXCLUDED.snapshot_id, cutoff = EXCLUDED.cutoff,
                      best_params = EXCLUDED.best_params, result = EXCLUDED.result
               RETURNING id""",
            (dataset, mode, dag_run_id, snapshot_id, cutoff, Jsonb(best_params), Jsonb(result)),
        ).fetchone()[0]


def tuned(conn: Connection, dataset: str) -> dict | None:
    """The newest search of `dataset` (id, mode, best_params, result, created_at), or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT * FROM tuning_runs WHERE dataset = %s ORDER BY created_at DESC, id DESC LIMIT 1", (dataset,)
        ).fetchone()


def describe(row: dict[str, Any]) -> str:
    metrics = row.get("metrics") or {}
    model = metrics.get("model", {})
    cutoff = f"cutoff {row['cutoff']:%Y-%m-%d %H:%M} " if row.get("cutoff") else ""
    return (
        f"{row['model_id']} [{row['status']}] snapshot {row['snapshot_id'][:12]} {cutoff}"
        f"rmse={model.get('rmse', float('nan')):.4f} ndcg@{metrics.get('k', '?')}={model.get('ndcg_at_k', float('nan')):.4f} "
        f"at {row['model_uri']}"
    )
