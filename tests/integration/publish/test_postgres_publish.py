"""Publishing to the real PostgreSQL of the local stack, each test in a schema of its own."""

import threading
import time
import uuid

import psycopg
import pytest

from movielens_recs.publish import postgres as pg
from movielens_recs.publish import sinks

from tests.publish_fixtures import N, NOW, cold, recs


@pytest.fixture
def dsn_schema(stack):
    schema = f"pub_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(stack.postgres_dsn(), autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {schema}")
    yield stack.postgres_dsn(), schema
    with psycopg.connect(stack.postgres_dsn(), autocommit=True) as c:
        c.execute(f"DROP SCHEMA {schema} CASCADE")


def connect(dsn_schema):
    dsn, schema = dsn_schema
    conn = psycopg.connect(dsn, autocommit=True, options=f"-c search_path={schema}")
    return conn


def served(conn, user_id=1):
    return conn.execute("SELECT model_version, rank, movie_id, score FROM recommendations WHERE user_id = %s ORDER BY rank",
                        (user_id,)).fetchall()


def tables(conn):
    return {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}


def test_publish_switches_readers_and_keeps_versions_for_rollback(dsn_schema):
    with connect(dsn_schema) as conn:
        first = pg.publish(conn, recs(50, 1), cold(1), "m-1", NOW, keep=2)
        assert first.rows == 500 and not first.already_current
        assert {r[0] for r in served(conn)} == {"m-1"} and [r[1] for r in served(conn)] == list(range(1, N + 1))
        pg.publish(conn, recs(50, 2), cold(2), "m-2", NOW, keep=2)
        assert {r[0] for r in served(conn)} == {"m-2"}
        assert conn.execute("SELECT count(*), min(model_version) FROM recommendations_cold_start").fetchone() == (N, "m-2")
        # an index on (user_id, rank) serves the readers' query
        assert conn.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'recs_m_2'").fetchone()[0].endswith("(user_id, rank)")

        sink = [sinks.PostgresSink(conn, "test", keep=2)]
        assert sinks.rollback(sink) == "m-1"
        assert {r[0] for r in served(conn)} == {"m-1"}
        with pytest.raises(sinks.SinkError, match="no earlier version"):  # back, not forth again
            sinks.rollback(sink)
        assert sinks.rollback(sink, "m-2") == "m-2"

        third = pg.publish(conn, recs(50, 3), cold(3), "m-3", NOW, keep=2)
        assert third.dropped_versions == ["m-1"]
        assert pg.kept_versions(conn) == ["m-3", "m-2"] and "recs_m_1" not in tables(conn)
        with pytest.raises(sinks.SinkError, match="m-1 is not kept .kept: m-3, m-2.; nothing was changed"):
            sinks.rollback(sink, "m-1")
        with pytest.raises(pg.PublishError, match="m-1 is not loaded"):
            pg.switch(conn, "m-1")
        assert pg.publish(conn, recs(50, 3), cold(3), "m-3", NOW).already_current


def test_readers_see_only_complete_sets_from_one_version_during_publishes(dsn_schema):
    with connect(dsn_schema) as conn:
        pg.publish(conn, recs(20_000, 0), cold(0), "v0", NOW, keep=2)
    seen, errors, stop = [], [], threading.Event()

    def reader():
        with connect(dsn_schema) as r:
            deadline = time.monotonic() + 120
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    rows = served(r, user_id=12_345)
                    seen.append(({v for v, *_ in rows}, [rank for _, rank, *_ in rows]))
                except Exception as exc:  # any error a reader gets is a failure of the publish
                    errors.append(repr(exc))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        with connect(dsn_schema) as conn:
            for version in ("v1", "v2", "v3"):
                pg.publish(conn, recs(20_000, int(version[1])), cold(1), version, NOW, keep=2)
    finally:
        stop.set()
        thread.join()
    assert not errors
    assert len(seen) > 10
    for versions, ranks in seen:
        assert len(versions) == 1 and ranks == list(range(1, N + 1))
    assert {next(iter(v)) for v, _ in seen} >= {"v0", "v3"}


def test_a_publish_that_fails_midway_leaves_the_old_set(dsn_schema):
    with connect(dsn_schema) as conn:
        pg.publish(conn, recs(100, 1), cold(1), "good", NOW)
        before = served(conn)
        with pytest.raises(psycopg.errors.NotNullViolation):
            pg.publish(conn, recs(30_000, 2, bad_last_row=True), cold(2), "broken", NOW)
        assert served(conn) == before
        assert pg.current_version(conn) == "good" and pg.kept_versions(conn) == ["good"]
        assert not any("broken" in t for t in tables(conn)), "no stray table of the failed version"


def test_a_killed_connection_during_load_leaves_the_old_set(dsn_schema):
    with connect(dsn_schema) as conn:
        pg.publish(conn, recs(100, 1), cold(1), "good", NOW)
        before = served(conn)
    victim = connect(dsn_schema)
    pid = victim.info.backend_pid
    failure = []

    def load():
        try:
            pg.publish(victim, recs(200_000, 2), cold(2), "doomed", NOW)
        except psycopg.OperationalError as exc:
            failure.append(exc)

    thread = threading.Thread(target=load)
    thread.start()
    with connect(dsn_schema) as conn:
        try:
            # the kill lands while the 2M rows are being copied in, not on an idle connection
            deadline = time.monotonic() + 60
            while not conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s AND state = 'active' "
                                   "AND query LIKE 'COPY%%'", (pid,)).fetchone():
                assert thread.is_alive() and time.monotonic() < deadline, "the publish never reached its COPY"
                time.sleep(0.01)
            assert conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
        finally:
            thread.join(60)
        assert failure, "the publish should have died with its connection"
        assert served(conn) == before and pg.current_version(conn) == "good"
        # no stray table: every version table is one the ledger names
        ledger = {t for row in conn.execute(f"SELECT recs_table, cold_table FROM {pg.VERSIONS_TABLE}") for t in row}
        assert {t for t in tables(conn) if t.startswith("recs_")} == ledger
        # and the same version loads again, whole
        pg.publish(conn, recs(50, 2), cold(2), "doomed", NOW)
        assert pg.current_version(conn) == "doomed" and len(served(conn)) == N


def test_identifiers_from_configuration_are_quoted(dsn_schema):
    with connect(dsn_schema) as conn:
        evil = 'x"; DROP TABLE published_versions; --'
        pg.publish(conn, recs(5, 1), cold(1), evil, NOW)
        assert pg.current_version(conn) == evil
        assert "published_versions" in tables(conn)


def test_a_half_loaded_version_left_behind_is_dropped_before_the_reload(dsn_schema):
    """Tables of a version whose load died outside a transaction (an older release, a hand load):
    the next publish of that version starts from nothing, so none of their rows are served."""
    with connect(dsn_schema) as conn:
        recs_table, cold_table = pg.table_names("m-1")
        conn.execute(f'CREATE TABLE "{recs_table}" (user_id integer, rank smallint, movie_id integer, junk text)')
        conn.execute(f'INSERT INTO "{recs_table}" VALUES (999, 1, 4242, \'half-loaded\')')
        conn.execute(f'CREATE TABLE "{cold_table}" (rank smallint)')
        pg.publish(conn, recs(20, 1), cold(1), "m-1", NOW)
        assert conn.execute("SELECT count(*), count(*) FILTER (WHERE user_id = 999) FROM recommendations").fetchone() == (200, 0)
        assert conn.execute("SELECT count(*) FROM recommendations_cold_start").fetchone() == (N,)
