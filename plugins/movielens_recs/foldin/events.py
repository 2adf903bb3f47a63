"""Rating events: the ratings apps record after the nightly model was trained, one table per
dataset namespace, and the fold-in's watermark beside them.

    movies(movie_id, title, genres)   the catalog an event may name (refreshed by each publish)
    rating_events(event_id, idempotency_key, user_id, movie_id, rating, rated_at, received_at)
    fold_in_state(model_version, last_event_id, sequence, folded_at)

The database itself refuses a bad event, whoever writes it (the API, or an app with the writer
role, which may only insert the event's own columns here): an unknown movie (foreign key to the catalog), a rating off
the dataset's scale, a time in the future, a key already used. Each refusal is a constraint with
a name, which `reason` turns into a sentence. `event_id` is an identity the writer cannot set, so
the fold-in's watermark (the last event it folded in) is a plain number.
"""

from __future__ import annotations

import logging

import pyarrow as pa
from psycopg import Connection, errors, sql

log = logging.getLogger(__name__)

EVENTS_TABLE = "rating_events"
STATE_TABLE = "fold_in_state"
MOVIES_TABLE = "movies"
# clocks of apps and database disagree a little; a minute ahead is still "now"
CLOCK_SKEW = "1 minute"

_DDL = """
CREATE TABLE IF NOT EXISTS movies (
    movie_id  integer PRIMARY KEY,
    title     text,
    genres    text
);
CREATE TABLE IF NOT EXISTS rating_events (
    event_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    idempotency_key text NOT NULL
                    CONSTRAINT rating_events_key_length CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    user_id         integer NOT NULL CONSTRAINT rating_events_user_positive CHECK (user_id > 0),
    movie_id        integer NOT NULL CONSTRAINT rating_events_movie_known REFERENCES movies (movie_id),
    rating          real NOT NULL,
    rated_at        timestamptz NOT NULL
                    CONSTRAINT rating_events_not_future CHECK (rated_at <= now() + interval '{skew}'),
    received_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT rating_events_key_unique UNIQUE (idempotency_key)
);
CREATE INDEX IF NOT EXISTS rating_events_by_user ON rating_events (user_id, event_id);
CREATE TABLE IF NOT EXISTS rating_scale (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    vals      real[] NOT NULL
);
CREATE TABLE IF NOT EXISTS fold_in_state (
    model_version  text PRIMARY KEY,
    last_event_id  bigint NOT NULL DEFAULT 0,
    sequence       bigint NOT NULL DEFAULT 0,
    folded_at      timestamptz
);
""".replace("{skew}", CLOCK_SKEW)

SCALE_CONSTRAINT = "rating_events_on_scale"
REASONS = {
    "rating_events_movie_known": "movie {movie_id} is not in the dataset's catalog",
    "rating_events_not_future": "rated_at {rated_at} is in the future",
    "rating_events_key_unique": "idempotency key {key!r} was already used: the event is recorded once",
    "rating_events_key_length": "the idempotency key must be 1 to 200 characters",
    "rating_events_user_positive": "user ids are positive",
    SCALE_CONSTRAINT: "rating {rating} is off the dataset's scale ({scale})",
}

INSERT = sql.SQL("INSERT INTO {} (idempotency_key, user_id, movie_id, rating, rated_at) "
                 "VALUES (%(key)s, %(user_id)s, %(movie_id)s, %(rating)s, %(rated_at)s)")


def prepare(conn: Connection, movies: pa.Table, rating_values: tuple[float, ...], writer_role: str | None,
            reader_role: str | None) -> None:
    """Create the tables (idempotent), refresh the catalog and the scale, grant the writer role
    INSERT on the events and nothing else. `conn` works in the namespace's schema."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('rating_events_schema'))")
        conn.execute(_DDL)
        # movies never leave the catalog: an event naming one stays valid
        conn.execute("CREATE TEMP TABLE catalog_load (movie_id integer, title text, genres text) ON COMMIT DROP")
        with conn.cursor() as cur, cur.copy("COPY catalog_load (movie_id, title, genres) FROM STDIN") as copy:
            columns = [movies.column(c).to_pylist() for c in ("movie_id", "title", "genres")]
            for row in zip(*columns):
                copy.write_row(row)
        conn.execute("INSERT INTO movies SELECT DISTINCT ON (movie_id) * FROM catalog_load ON CONFLICT (movie_id) "
                     "DO UPDATE SET title = EXCLUDED.title, genres = EXCLUDED.genres")
        values = sorted({float(v) for v in rating_values})
        constrained = conn.execute("SELECT 1 FROM pg_constraint WHERE conname = %s AND conrelid = "
                                   "'rating_events'::regclass", (SCALE_CONSTRAINT,)).fetchone()
        if scale(conn) != values or not constrained:
            # (only when it changed: altering the table stops writers for a moment)
            conn.execute("INSERT INTO rating_scale (vals) VALUES (%s) ON CONFLICT (only_row) DO UPDATE SET vals = "
                         "EXCLUDED.vals", (values,))
            conn.execute(sql.SQL("ALTER TABLE rating_events DROP CONSTRAINT IF EXISTS {}").format(
                sql.Identifier(SCALE_CONSTRAINT)))
            # NOT VALID: events recorded under an earlier scale stay; new ones must fit this one
            conn.execute(sql.SQL("ALTER TABLE rating_events ADD CONSTRAINT {} CHECK (rating = ANY ({}::real[])) "
                                 "NOT VALID").format(sql.Identifier(SCALE_CONSTRAINT), sql.Literal(values)))
        schema = sql.Identifier(conn.execute("SELECT current_schema()").fetchone()[0])
        # column by column: the writer cannot choose event_id (even with OVERRIDING SYSTEM VALUE,
        # which a table-wide INSERT allows) nor received_at
        writes = ["INSERT (idempotency_key, user_id, movie_id, rating, rated_at) ON rating_events"]
        for role, grants in ((writer_role, writes), (reader_role, ["SELECT ON rating_scale"])):
            if not role:
                continue
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                log.warning("role %s does not exist: nothing granted to it", role)
                continue
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, sql.Identifier(role)))
            for grant in grants:
                conn.execute(sql.SQL(f"GRANT {grant} TO {{}}").format(sql.Identifier(role)))


def scale(conn: Connection) -> list[float]:
    row = conn.execute("SELECT vals FROM rating_scale").fetchone()
    return list(row[0]) if row else []


def reason(exc: errors.IntegrityError, event: dict, scale_values: list[float] | None = None) -> str:
    """The sentence an app reads for a refused event."""
    name = getattr(exc.diag, "constraint_name", None)
    template = REASONS.get(name)
    if template is None:
        return f"the event was refused: {exc.diag.message_primary or exc}"
    values = ", ".join(f"{v:g}" for v in scale_values or []) or "see the dataset's catalog"
    return template.format(**event, scale=values)


def record(conn: Connection, schema: str, event: dict) -> None:
    """One event into namespace `schema`; raises psycopg's IntegrityError (see `reason`) when the
    database refuses it."""
    conn.execute(INSERT.format(sql.Identifier(schema, EVENTS_TABLE)), event)


def high_water(conn: Connection) -> int:
    """The last event id whose transaction, and every earlier one's, has committed. Identities are
    handed out before commit, so a reader could see event 11 while 10 is still in flight and
    skip 10 for good; a SHARE lock waits for inserts in flight (and holds new ones for the
    moment it takes to read the maximum)."""
    with conn.transaction():
        conn.execute("SET LOCAL lock_timeout = '30s'")
        conn.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(sql.Identifier(EVENTS_TABLE)))
        return conn.execute(sql.SQL("SELECT coalesce(max(event_id), 0) FROM {}").format(
            sql.Identifier(EVENTS_TABLE))).fetchone()[0]


def watermark(conn: Connection, model_version: str) -> tuple[int, int]:
    row = conn.execute(sql.SQL("SELECT last_event_id, sequence FROM {} WHERE model_version = %s").format(
        sql.Identifier(STATE_TABLE)), (model_version,)).fetchone()
    return (row[0], row[1]) if row else (0, 0)


def pending(conn: Connection, after: int, through: int) -> tuple[list[int], int]:
    """(the users with events in (after, through], how many events that is)."""
    rows = conn.execute(sql.SQL("SELECT user_id, count(*) FROM {} WHERE event_id > %s AND event_id <= %s "
                                "GROUP BY user_id ORDER BY user_id").format(sql.Identifier(EVENTS_TABLE)),
                        (after, through)).fetchall()
    return [r[0] for r in rows], sum(r[1] for r in rows)


def ratings_of(conn: Connection, users: list[int], through: int) -> pa.Table:
    """Every event of `users` up to `through`, the latest per (user, movie) only: a re-rating
    replaces the earlier rating, as a retrain on the new data would see it."""
    rows = conn.execute(sql.SQL(
        "SELECT DISTINCT ON (user_id, movie_id) user_id, movie_id, rating, event_id FROM {} "
        "WHERE user_id = ANY(%s) AND event_id <= %s ORDER BY user_id, movie_id, rated_at DESC, event_id DESC"
    ).format(sql.Identifier(EVENTS_TABLE)), (users, through)).fetchall()
    columns = list(zip(*rows)) if rows else [[], [], [], []]
    return pa.table({"user_id": pa.array(columns[0], pa.int32()), "movie_id": pa.array(columns[1], pa.int32()),
                     "rating": pa.array(columns[2], pa.float32()), "event_id": pa.array(columns[3], pa.int64())})


def start(conn: Connection, model_version: str) -> tuple[int, int]:
    """(last event folded in, last fold-in sequence) for `model_version`; (0, 0) before its first."""
    conn.execute(sql.SQL("INSERT INTO {} (model_version) VALUES (%s) ON CONFLICT DO NOTHING").format(
        sql.Identifier(STATE_TABLE)), (model_version,))
    return watermark(conn, model_version)


def advance(conn: Connection, model_version: str, after: int, through: int, sequence: int) -> None:
    """Move `model_version`'s watermark from `after` to `through` as fold-in `sequence`, inside the
    caller's transaction (last, after its writes); fails if another fold-in moved it meanwhile,
    so that the caller's writes roll back with it."""
    row = conn.execute(sql.SQL(
        "UPDATE {} SET last_event_id = %s, sequence = %s, folded_at = now() "
        "WHERE model_version = %s AND last_event_id = %s AND sequence = %s RETURNING sequence"
    ).format(sql.Identifier(STATE_TABLE)), (through, sequence, model_version, after, sequence - 1)).fetchone()
    if row is None:
        raise RuntimeError(f"the fold-in watermark of {model_version} moved past event {after} during this "
                           "fold-in: another fold-in ran; nothing of this one is kept")
