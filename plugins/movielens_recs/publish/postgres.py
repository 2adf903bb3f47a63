"""Publish recommendations to PostgreSQL so that readers never see a partial set.

Each model version is bulk-loaded with COPY into tables of its own, indexed on (user_id, rank)
and analyzed while readers keep using the previous version; then one short transaction points
the views readers use at the new tables. PostgreSQL's DDL is transactional, so a reader sees the
old set or the new one, never a mix and never an empty table. The last few versions stay for
rollback; older ones are dropped after the switch.

Readers use two stable names in the pipeline's schema:
    recommendations(user_id, rank, movie_id, title, score, model_version, generated_at, predicted_rating, promoted,
                    fold_in_seq)
    recommendations_cold_start(rank, movie_id, title, score, model_version, generated_at, promoted)
Every identifier built from configuration goes through psycopg.sql.Identifier.

Between retrains, a fold-in (foldin/) replaces some users' lists of the served version: the view
takes a user's rows from `fold_in_recs` when `fold_in_users` names the user for that version,
else from the version's table. Each side is filtered by the served version, so publishing
another version stops serving the old one's fold-ins in the same switch.
"""

from __future__ import annotations

import io
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import Connection, sql

log = logging.getLogger(__name__)

READER_VIEW = "recommendations"
COLD_START_VIEW = "recommendations_cold_start"
VERSIONS_TABLE = "published_versions"
FOLD_IN_USERS, FOLD_IN_RECS = "fold_in_users", "fold_in_recs"

_VERSIONS_DDL = """
CREATE TABLE IF NOT EXISTS {versions} (
    model_version  text PRIMARY KEY,
    recs_table     text NOT NULL,
    cold_table     text NOT NULL,
    rows           bigint NOT NULL,
    cold_rows      bigint NOT NULL,
    generated_at   timestamptz NOT NULL,
    loaded_at      timestamptz NOT NULL DEFAULT now(),
    served_from    timestamptz,
    is_current     boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX IF NOT EXISTS published_versions_one_current ON {versions} ((true)) WHERE is_current;
-- users whose list a fold-in recomputed for a version (foldin/), and those lists
CREATE TABLE IF NOT EXISTS fold_in_users (
    model_version  text NOT NULL,
    user_id        integer NOT NULL,
    fold_in_seq    bigint NOT NULL,
    folded_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model_version, user_id)
);
CREATE TABLE IF NOT EXISTS fold_in_recs (
    model_version    text NOT NULL,
    user_id          integer NOT NULL,
    rank             smallint NOT NULL,
    movie_id         integer NOT NULL,
    title            text,
    score            real NOT NULL,
    predicted_rating real,
    promoted         boolean,
    fold_in_seq      bigint NOT NULL,
    generated_at     timestamptz NOT NULL,
    PRIMARY KEY (model_version, user_id, rank)
);
"""
FOLD_IN_COLUMNS = ["user_id", "rank", "movie_id", "title", "score", "predicted_rating", "promoted"]

RECS_COLUMNS = ["user_id", "rank", "movie_id", "title", "score"]
# the rating model's prediction, and whether a rule gave the place; NULL in versions published
# before they existed
OPTIONAL_RECS_COLUMNS = ["predicted_rating", "promoted"]
COLD_COLUMNS = ["rank", "movie_id", "title", "score"]
OPTIONAL_COLD_COLUMNS = ["promoted"]


class PublishError(RuntimeError):
    pass


@dataclass(frozen=True)
class PublishResult:
    model_version: str
    rows: int
    cold_rows: int
    load_seconds: float
    switch_seconds: float
    dropped_versions: list[str]
    already_current: bool = False
    # time.perf_counter() at the start and end of the switch, to line readers' waits up with it
    switch_window: tuple[float, float] = (0.0, 0.0)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.load_seconds if self.load_seconds else float("inf")


def table_names(model_version: str) -> tuple[str, str]:
    slug = re.sub(r"[^a-z0-9_]+", "_", model_version.lower()).strip("_")
    if not slug:
        raise PublishError(f"model version {model_version!r} gives no usable table name")
    base = f"recs_{slug}"[:55]  # room for "_cold" under PostgreSQL's 63-byte limit
    return base, f"{base}_cold"


def ensure_schema(conn: Connection) -> None:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('published_versions_schema'))")
        conn.execute(sql.SQL(_VERSIONS_DDL).format(versions=sql.Identifier(VERSIONS_TABLE)))


def current_version(conn: Connection) -> str | None:
    row = conn.execute(
        sql.SQL("SELECT model_version FROM {} WHERE is_current").format(sql.Identifier(VERSIONS_TABLE))
    ).fetchone()
    return row[0] if row else None


def kept_versions(conn: Connection) -> list[str]:
    rows = conn.execute(
        sql.SQL("SELECT model_version FROM {} ORDER BY loaded_at DESC").format(sql.Identifier(VERSIONS_TABLE))
    ).fetchall()
    return [r[0] for r in rows]


def _copy(conn: Connection, table: str, data: pa.Table, columns: list[str]) -> None:
    """COPY in CSV, written by Arrow in C rather than row by row in Python."""
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    with conn.cursor() as cur, cur.copy(stmt) as copy:
        for batch in data.select(columns).to_batches(max_chunksize=200_000):
            buffer = io.BytesIO()
            pacsv.write_csv(batch, buffer, pacsv.WriteOptions(include_header=False))
            copy.write(buffer.getvalue())


def publish(
    conn: Connection,
    recommendations: pa.Table,
    cold_start: pa.Table,
    model_version: str,
    generated_at: datetime,
    keep: int | None = 3,
) -> PublishResult:
    """Load `model_version`, switch readers to it, drop versions beyond the newest `keep` (None:
    drop nothing yet; publish/sinks.py drops once every sink has switched)."""
    if keep is not None and keep < 1:
        raise PublishError("keep must be at least 1: the served version is always kept")
    ensure_schema(conn)
    if current_version(conn) == model_version:
        log.info("%s is already served: nothing to do", model_version)
        return PublishResult(model_version, recommendations.num_rows, cold_start.num_rows, 0.0, 0.0, [], True)
    recs_table, cold_table = table_names(model_version)
    ident = sql.Identifier

    started = time.perf_counter()
    with conn.transaction():
        # a leftover of an earlier failed attempt of this same version is never served: replace it
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}, {}").format(ident(recs_table), ident(cold_table)))
        conn.execute(sql.SQL(
            "CREATE TABLE {} (user_id integer NOT NULL, rank smallint NOT NULL, movie_id integer NOT NULL, "
            "title text, score real NOT NULL, model_version text NOT NULL DEFAULT {}, "
            "generated_at timestamptz NOT NULL DEFAULT {}, predicted_rating real, promoted boolean)"
        ).format(ident(recs_table), sql.Literal(model_version), sql.Literal(generated_at)))
        conn.execute(sql.SQL(
            "CREATE TABLE {} (rank smallint NOT NULL, movie_id integer NOT NULL, title text, score real NOT NULL, "
            "model_version text NOT NULL DEFAULT {}, generated_at timestamptz NOT NULL DEFAULT {}, promoted boolean)"
        ).format(ident(cold_table), sql.Literal(model_version), sql.Literal(generated_at)))
        _copy(conn, recs_table, recommendations,
              RECS_COLUMNS + [c for c in OPTIONAL_RECS_COLUMNS if c in recommendations.column_names])
        _copy(conn, cold_table, cold_start, COLD_COLUMNS + [c for c in OPTIONAL_COLD_COLUMNS if c in cold_start.column_names])
        conn.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (user_id, rank)").format(ident(recs_table)))
        conn.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (rank)").format(ident(cold_table)))
        conn.execute(sql.SQL(
            "INSERT INTO {} (model_version, recs_table, cold_table, rows, cold_rows, generated_at) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (model_version) DO UPDATE SET "
            "recs_table = EXCLUDED.recs_table, cold_table = EXCLUDED.cold_table, rows = EXCLUDED.rows, "
            "cold_rows = EXCLUDED.cold_rows, generated_at = EXCLUDED.generated_at, loaded_at = now()"
        ).format(ident(VERSIONS_TABLE)),
            (model_version, recs_table, cold_table, recommendations.num_rows, cold_start.num_rows, generated_at))
    conn.execute(sql.SQL("ANALYZE {}").format(ident(recs_table)))
    conn.execute(sql.SQL("ANALYZE {}").format(ident(cold_table)))
    load_seconds = time.perf_counter() - started

    switch_started = time.perf_counter()
    switch_seconds = switch(conn, model_version)
    dropped = drop_old(conn, keep) if keep is not None else []
    log.info("published %s: %d rows loaded in %.2f s, readers switched in %.3f s, dropped %s",
             model_version, recommendations.num_rows, load_seconds, switch_seconds, dropped or "nothing")
    return PublishResult(model_version, recommendations.num_rows, cold_start.num_rows, load_seconds, switch_seconds,
                         dropped, switch_window=(switch_started, switch_started + switch_seconds))


def switch(conn: Connection, model_version: str) -> float:
    """Point the readers' views at `model_version` in one short transaction."""
    ident = sql.Identifier
    started = time.perf_counter()
    with conn.transaction():
        # wait briefly for readers mid-query, rather than queueing every new reader behind us
        conn.execute("SET LOCAL lock_timeout = '10s'")
        row = conn.execute(
            sql.SQL("SELECT recs_table, cold_table FROM {} WHERE model_version = %s FOR UPDATE").format(
                ident(VERSIONS_TABLE)), (model_version,),
        ).fetchone()
        if row is None:
            raise PublishError(f"model version {model_version} is not loaded (kept: {kept_versions(conn)})")
        recs_table, cold_table = row
        # a column added later goes last (CREATE OR REPLACE VIEW may only append), and a kept
        # version loaded before it existed serves NULL there
        def optional(table: str, column: str, kind: str):
            found = conn.execute(
                "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = %s AND column_name = %s", (table, column)).fetchone()
            return sql.SQL("{} AS {}").format(ident(column) if found else sql.SQL(f"NULL::{kind}"), ident(column))

        # one statement reads both sides in one snapshot: a user's list is the version's or the
        # fold-in's, whole, never a mix
        conn.execute(sql.SQL(
            "CREATE OR REPLACE VIEW {view} AS "
            "SELECT r.user_id, r.rank, r.movie_id, r.title, r.score, r.model_version, r.generated_at, "
            "{predicted}, {promoted}, NULL::bigint AS fold_in_seq FROM {recs} r "
            "WHERE NOT EXISTS (SELECT 1 FROM fold_in_users f WHERE f.model_version = {version} "
            "AND f.user_id = r.user_id) "
            "UNION ALL SELECT user_id, rank, movie_id, title, score, model_version, generated_at, predicted_rating, "
            "promoted, fold_in_seq FROM fold_in_recs WHERE model_version = {version}"
        ).format(view=ident(READER_VIEW), predicted=optional(recs_table, "predicted_rating", "real"),
                 promoted=optional(recs_table, "promoted", "boolean"), recs=ident(recs_table),
                 version=sql.Literal(model_version)))
        conn.execute(sql.SQL(
            "CREATE OR REPLACE VIEW {} AS SELECT rank, movie_id, title, score, model_version, generated_at, {} FROM {}"
        ).format(ident(COLD_START_VIEW), optional(cold_table, "promoted", "boolean"), ident(cold_table)))
        conn.execute(sql.SQL("UPDATE {} SET is_current = false WHERE is_current").format(ident(VERSIONS_TABLE)))
        conn.execute(sql.SQL("UPDATE {} SET is_current = true, served_from = now() WHERE model_version = %s").format(
            ident(VERSIONS_TABLE)), (model_version,))
    return time.perf_counter() - started


def drop_old(conn: Connection, keep: int) -> list[str]:
    ident = sql.Identifier
    dropped = []
    with conn.transaction():
        rows = conn.execute(sql.SQL(
            "SELECT model_version, recs_table, cold_table FROM {} WHERE NOT is_current ORDER BY loaded_at DESC OFFSET %s"
        ).format(ident(VERSIONS_TABLE)), (keep - 1,)).fetchall()
        for version, recs_table, cold_table in rows:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}, {}").format(ident(recs_table), ident(cold_table)))
            # its fold-ins, and their watermark (foldin/events.py), go with it: were the version
            # published again, its first fold-in would redo every event
            state = conn.execute("SELECT to_regclass('fold_in_state')").fetchone()[0]
            for table in (VERSIONS_TABLE, FOLD_IN_USERS, FOLD_IN_RECS, *(["fold_in_state"] if state else [])):
                conn.execute(sql.SQL("DELETE FROM {} WHERE model_version = %s").format(ident(table)), (version,))
            dropped.append(version)
    return dropped


def serves_fold_ins(conn: Connection) -> bool:
    """Whether the reader view takes fold-ins into account (views switched before they existed
    do not, until the next switch)."""
    return conn.execute("SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
                        "AND table_name = %s AND column_name = 'fold_in_seq'", (READER_VIEW,)).fetchone() is not None


def replace_users(conn: Connection, model_version: str, recs: pa.Table, sequence: int, generated_at: datetime) -> int:
    """Replace the lists of the users in `recs` (FOLD_IN_COLUMNS) for `model_version` with fold-in
    `sequence`, inside the caller's transaction: readers see every user's new list at its commit,
    or none. Returns the number of users."""
    users = sorted(set(recs.column("user_id").to_pylist()))
    for table in (FOLD_IN_RECS, FOLD_IN_USERS):
        conn.execute(sql.SQL("DELETE FROM {} WHERE model_version = %s AND user_id = ANY(%s)").format(
            sql.Identifier(table)), (model_version, users))
    stmt = sql.SQL("COPY fold_in_recs ({}, model_version, fold_in_seq, generated_at) FROM STDIN").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in FOLD_IN_COLUMNS))
    with conn.cursor() as cur, cur.copy(stmt) as copy:
        for row in zip(*(recs.column(c).to_pylist() for c in FOLD_IN_COLUMNS)):
            copy.write_row((*row, model_version, sequence, generated_at))
    with conn.cursor() as cur, cur.copy("COPY fold_in_users (model_version, user_id, fold_in_seq) FROM STDIN") as copy:
        for user in users:
            copy.write_row((model_version, user, sequence))
    return len(users)


def grant_readers(conn: Connection, role: str | None) -> None:
    """Let the apps' read-only role read the reader views of this schema, and nothing else: the
    views run with their owner's rights, so the versions' tables need no grant."""
    if not role:
        return
    if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
        log.warning("reader role %s does not exist: apps must read as another role", role)
        return
    # only what is missing: the fold-in renews the grants every run, and a publish on each switch
    views = conn.execute(
        "SELECT table_name FROM information_schema.views WHERE table_schema = current_schema() "
        "AND table_name IN (%s, %s) AND NOT has_table_privilege(%s, format('%%I.%%I', table_schema, table_name), "
        "'SELECT')", (READER_VIEW, COLD_START_VIEW, role)).fetchall()
    usage = conn.execute("SELECT has_schema_privilege(%s, current_schema(), 'USAGE')", (role,)).fetchone()[0]
    if usage and not views:
        return
    with conn.transaction():
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
            sql.Identifier(conn.execute("SELECT current_schema()").fetchone()[0]), sql.Identifier(role)))
        for (view,) in views:
            conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(view), sql.Identifier(role)))


def unavailable(conn: Connection, model_version: str) -> str | None:
    """Why readers cannot be switched to `model_version`, or None if they can."""
    ensure_schema(conn)
    row = conn.execute(sql.SQL("SELECT recs_table, cold_table FROM {} WHERE model_version = %s").format(
        sql.Identifier(VERSIONS_TABLE)), (model_version,)).fetchone()
    if row is None:
        return f"model version {model_version} is not kept (kept: {', '.join(kept_versions(conn)) or 'none'})"
    missing = [t for t in row if conn.execute("SELECT to_regclass(%s)", (sql.Identifier(t).as_string(conn),)
                                              ).fetchone()[0] is None]
    return f"the tables of {model_version} are missing: {', '.join(missing)}" if missing else None
