"""Rating events and the fold-in on the stack's PostgreSQL, with a small model of known factors:
what the writer role may do, the watermark, what readers see before, during and after a fold-in,
after a failure mid-publish, and after a new version is published."""

import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from movielens_recs.datasets.catalog import HALF_STARS
from mlrecs_devkit.stack import PG_READER, PG_WRITER
from movielens_recs.foldin import events
from movielens_recs.foldin.fold import FoldInModel
from movielens_recs.foldin.run import fold_in, on_driver
from movielens_recs.foldin.solve import ItemFactors
from movielens_recs.models.params import AlsParams
from movielens_recs.publish import sinks
from movielens_recs.publish.sinks import Namespace
from tests.publish_fixtures import NOW, cold, recs

DATASET = "ml-fold"
MOVIES = 300  # in the catalog; the model knows the first 200
N = 10


@pytest.fixture
def namespace(stack, tmp_path):
    """ml-fold published as v-1 (users 1-50), its events tables, and a model store for v-1 and v-2
    whose known ratings are users 1-50's."""
    schema = Namespace(DATASET, f"fold_{uuid.uuid4().hex[:8]}").pg_schema
    conn = psycopg.connect(stack.postgres_dsn(), autocommit=True, application_name="fold-in-test")
    conn.execute(f'CREATE SCHEMA "{schema}"')
    conn.execute(f'SET search_path TO "{schema}"')
    sinks.publish([sink(conn, schema)], "v-1", recs(50, 1), cold(1), NOW)
    movies = pa.table({"movie_id": pa.array(range(1, MOVIES + 1), pa.int32()),
                       "title": [f"Movie {i}" for i in range(1, MOVIES + 1)], "genres": ["Drama"] * MOVIES})
    events.prepare(conn, movies, HALF_STARS, PG_WRITER, PG_READER)
    rng = np.random.default_rng(5)
    known = pa.table({"user_id": pa.array(np.repeat(np.arange(1, 51), 8), pa.int32()),
                      "movie_id": pa.array(np.concatenate([rng.choice(200, 8, replace=False) + 1 for _ in range(50)]),
                                           pa.int32()),
                      "rating": pa.array(rng.integers(1, 11, 400) / 2, pa.float32())})
    for split in ("train", "test"):
        (tmp_path / "model" / "split" / split).mkdir(parents=True)
        half = known.slice(0, 200) if split == "train" else known.slice(200)
        pq.write_table(half, tmp_path / "model" / "split" / split / "part-0.parquet")
    yield schema, conn, movies, str(tmp_path / "model")
    conn.close()
    with psycopg.connect(stack.postgres_dsn(), autocommit=True) as c:
        c.execute(f'DROP SCHEMA "{schema}" CASCADE')


def sink(conn, schema):
    return sinks.PostgresSink(conn, schema, keep=3, reader_role=PG_READER)


def loader(movies, model_uri, seed_of=lambda v: int(v[-1])):
    """load_model for fold_in: each version its own random factors for movies 1-200."""
    def load(version):
        rng = np.random.default_rng(seed_of(version))
        ids = np.arange(1, 201)
        model = FoldInModel(version, AlsParams(), ItemFactors.from_arrays(ids, rng.normal(size=(200, 6))), True,
                            ItemFactors.from_arrays(ids, rng.normal(size=(200, 3))), 3.5, 5.0,
                            ItemFactors.from_arrays(ids, rng.normal(scale=0.3, size=(200, 1))), (0.5, 5.0),
                            dict(zip(movies.column("movie_id").to_pylist(), movies.column("title").to_pylist())))
        return model, model_uri, N
    return load


def write(stack, schema, *rows):
    """Events as an app records them: the writer role, one transaction each."""
    with psycopg.connect(stack.postgres_dsn(role=PG_WRITER), autocommit=True) as w:
        for user_id, movie_id, rating in rows:
            events.record(w, schema, {"key": uuid.uuid4().hex, "user_id": user_id, "movie_id": movie_id,
                                      "rating": rating, "rated_at": datetime.now(timezone.utc)})


def served(stack, schema, user_id):
    """A user's list as the apps' reader sees it: (model_version, fold_in_seq, [movie ids])."""
    with psycopg.connect(stack.postgres_dsn(role=PG_READER), autocommit=True) as r:
        rows = r.execute(f'SELECT model_version, fold_in_seq, movie_id, rank FROM "{schema}".recommendations '
                         "WHERE user_id = %s ORDER BY rank", (user_id,)).fetchall()
    assert [row[3] for row in rows] == list(range(1, len(rows) + 1))
    return (rows[0][0], rows[0][1], [row[2] for row in rows]) if rows else None


def rated(model_uri, user_id):
    import pyarrow.dataset as ds
    table = ds.dataset(model_uri + "/split", format="parquet").to_table(filter=ds.field("user_id") == user_id)
    return set(table.column("movie_id").to_pylist())


def test_only_the_users_with_new_events_get_new_lists_and_the_watermark_counts_each_event_once(stack, namespace):
    schema, conn, movies, model_uri = namespace
    before = {u: served(stack, schema, u) for u in (3, 4, 1000)}
    assert before[1000] is None and before[3][:2] == ("v-1", None)

    write(stack, schema, (3, 150, 5.0), (3, 151, 4.5), (1000, 7, 5.0), (1000, 8, 4.0), (1000, 250, 3.0))
    result = fold_in(conn, on_driver(loader(movies, model_uri)))
    assert (result.status, result.events, result.users, result.folded_users, result.sequence,
            result.events_through) == ("folded", 5, 2, 2, 1, 5)
    version, seq, three = served(stack, schema, 3)
    assert (version, seq, len(three)) == ("v-1", 1, N)
    # everything user 3 rated, before and now, is left out
    assert not set(three) & (rated(model_uri, 3) | {150, 151})
    version, seq, new_user = served(stack, schema, 1000)
    assert (version, seq, len(new_user)) == ("v-1", 1, N) and not set(new_user) & {7, 8, 250}
    assert served(stack, schema, 4) == before[4]  # no events: the version's own list

    # nothing new: nothing changes, the sequence stays
    again = fold_in(conn, on_driver(loader(movies, model_uri)))
    assert (again.status, again.sequence) == ("up to date", 1)
    # one more event: only that user is folded, as fold-in 2; user 3 keeps fold-in 1
    write(stack, schema, (4, 9, 2.0))
    third = fold_in(conn, on_driver(loader(movies, model_uri)))
    assert (third.events, third.users, third.sequence, third.events_through) == (1, 1, 2, 6)
    assert served(stack, schema, 4)[:2] == ("v-1", 2) and served(stack, schema, 3)[:2] == ("v-1", 1)
    assert conn.execute("SELECT count(*), count(DISTINCT user_id) FROM fold_in_users").fetchone() == (3, 3)


def test_a_user_with_only_movies_the_model_does_not_know_keeps_the_cold_start_list(stack, namespace):
    schema, conn, movies, model_uri = namespace
    write(stack, schema, (2000, 250, 5.0))  # in the catalog, not in the model
    result = fold_in(conn, on_driver(loader(movies, model_uri)))
    assert (result.users, result.folded_users, result.events_through) == (1, 0, 1)
    assert served(stack, schema, 2000) is None


def test_a_fold_in_killed_mid_publish_changes_nothing_and_its_rerun_folds_each_user_once(stack, namespace):
    schema, conn, movies, model_uri = namespace
    write(stack, schema, *[(u, 150 + u % 7, 4.0) for u in range(1, 31)])
    events.start(conn, "v-1")
    # another session holds the watermark's row: the fold-in writes every list, then waits for
    # the row to move the watermark, and is killed there, inside its transaction
    blocker = psycopg.connect(stack.postgres_dsn(), autocommit=False)
    blocker.execute(f'SELECT * FROM "{schema}".fold_in_state WHERE model_version = %s FOR UPDATE', ("v-1",))
    victim = psycopg.connect(stack.postgres_dsn(), autocommit=True)
    victim.execute(f'SET search_path TO "{schema}"')
    pid = victim.info.backend_pid
    failure = []

    def run():
        try:
            fold_in(victim, on_driver(loader(movies, model_uri)))
        except psycopg.Error as exc:
            failure.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            state = conn.execute("SELECT wait_event_type, query FROM pg_stat_activity WHERE pid = %s",
                                 (pid,)).fetchone()
            if state and state[0] == "Lock" and "UPDATE" in state[1]:
                break
            assert time.monotonic() < deadline and thread.is_alive(), f"the fold-in never reached the watermark: {state}"
            time.sleep(0.05)
        assert conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
    finally:
        blocker.rollback()  # also when the check failed: the schema's teardown would wait for it
        blocker.close()
        thread.join(30)
        victim.close()
    assert failure, "the fold-in should have failed"

    # nothing of it is served, and the watermark did not move
    assert served(stack, schema, 5)[:2] == ("v-1", None)
    assert conn.execute("SELECT count(*) FROM fold_in_recs").fetchone()[0] == 0
    assert events.watermark(conn, "v-1") == (0, 0)
    rerun = fold_in(conn, on_driver(loader(movies, model_uri)))
    assert (rerun.events, rerun.users, rerun.sequence) == (30, 30, 1)
    assert conn.execute("SELECT count(*), count(DISTINCT user_id), max(fold_in_seq) FROM fold_in_users").fetchone() \
        == (30, 30, 1)
    per_user = conn.execute("SELECT user_id, count(*) FROM fold_in_recs GROUP BY user_id").fetchall()
    assert len(per_user) == 30 and {count for _, count in per_user} == {N}


def test_a_new_version_stops_serving_the_old_ones_fold_ins_and_the_next_fold_in_redoes_them(stack, namespace):
    schema, conn, movies, model_uri = namespace
    write(stack, schema, (3, 150, 5.0), (1000, 7, 5.0))
    fold_in(conn, on_driver(loader(movies, model_uri)))
    folded_on_v1 = served(stack, schema, 3)
    assert folded_on_v1[:2] == ("v-1", 1)

    sinks.publish([sink(conn, schema)], "v-2", recs(50, 2), cold(2), NOW)
    # at the switch: the new version's own list, and nothing for a user it does not know
    assert served(stack, schema, 3)[:2] == ("v-2", None) and served(stack, schema, 1000) is None
    result = fold_in(conn, on_driver(loader(movies, model_uri)))
    assert (result.model_version, result.events, result.users, result.sequence) == ("v-2", 2, 2, 1)
    version, seq, three = served(stack, schema, 3)
    assert (version, seq) == ("v-2", 1) and three != folded_on_v1[2]  # v-2's own factors
    assert served(stack, schema, 1000)[:2] == ("v-2", 1)

    # a rollback serves v-1 with its own fold-ins again, whose watermark is where v-1 left it
    sinks.rollback([sink(conn, schema)], "v-1")
    assert served(stack, schema, 3) == folded_on_v1
    assert fold_in(conn, on_driver(loader(movies, model_uri))).status == "up to date"


def test_the_watermark_waits_for_events_still_being_written(stack, namespace):
    schema, conn, movies, model_uri = namespace
    got = []
    with psycopg.connect(stack.postgres_dsn(role=PG_WRITER), autocommit=False) as slow, \
            psycopg.connect(stack.postgres_dsn(), autocommit=True) as reader:
        events.record(slow, schema, {"key": "slow", "user_id": 1, "movie_id": 1, "rating": 4.0,
                                     "rated_at": datetime.now(timezone.utc)})  # takes event 1, not committed
        write(stack, schema, (2, 2, 4.0))  # event 2, committed first
        reader.execute(f'SET search_path TO "{schema}"')
        thread = threading.Thread(target=lambda: got.append(events.high_water(reader)))
        thread.start()
        try:
            deadline = time.monotonic() + 30
            while conn.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s",
                               (reader.info.backend_pid,)).fetchone()[0] != "Lock":
                assert time.monotonic() < deadline and not got, f"high_water did not wait: {got}"
                time.sleep(0.05)
        finally:
            slow.commit()  # also when the check failed: the schema's teardown would wait for it
            thread.join(30)
    # had it answered 2 before event 1 committed, event 1 would never be folded in
    assert got == [2]


def test_the_database_refuses_bad_events_from_any_writer_and_the_writer_can_only_insert(stack, namespace):
    schema, conn, _, _ = namespace
    good = {"key": "k-1", "user_id": 5, "movie_id": 12, "rating": 3.5, "rated_at": datetime.now(timezone.utc)}
    refused = {
        "unknown movie": ({**good, "key": "k-2", "movie_id": MOVIES + 1}, "movie 301 is not in the dataset's catalog"),
        "off the scale": ({**good, "key": "k-3", "rating": 7.0}, "rating 7.0 is off the dataset's scale (0.5, 1"),
        "between steps": ({**good, "key": "k-4", "rating": 3.25}, "rating 3.25 is off the dataset's scale"),
        "in the future": ({**good, "key": "k-5", "rated_at": datetime.now(timezone.utc) + timedelta(hours=1)},
                          "is in the future"),
        "duplicate key": ({**good, "user_id": 6}, "idempotency key 'k-1' was already used"),
        "user zero": ({**good, "key": "k-6", "user_id": 0}, "user ids are positive"),
    }
    with psycopg.connect(stack.postgres_dsn(role=PG_WRITER), autocommit=True) as w:
        events.record(w, schema, good)
        for name, (event, message) in refused.items():
            with pytest.raises(psycopg.errors.IntegrityError) as caught:
                events.record(w, schema, event)
            assert message in events.reason(caught.value, event, events.scale(conn)), name
        for statement in (f'SELECT * FROM "{schema}".rating_events', f'DELETE FROM "{schema}".rating_events',
                          f'UPDATE "{schema}".rating_events SET rating = 1', f'SELECT * FROM "{schema}".movies',
                          f'INSERT INTO "{schema}".rating_events (event_id, idempotency_key, user_id, movie_id, '
                          "rating, rated_at) OVERRIDING SYSTEM VALUE VALUES (999, 'x', 1, 1, 1, now())"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                w.execute(statement)
    assert conn.execute("SELECT event_id, idempotency_key, user_id FROM rating_events").fetchall() == [(1, "k-1", 5)]


def test_a_dropped_version_takes_its_fold_ins_and_watermark_with_it(stack, namespace):
    schema, conn, movies, model_uri = namespace
    write(stack, schema, (3, 150, 5.0))
    fold_in(conn, on_driver(loader(movies, model_uri)))
    assert events.watermark(conn, "v-1") == (1, 1)
    for seed in (2, 3, 4):  # keep=3: publishing v-4 drops v-1
        sinks.publish([sink(conn, schema)], f"v-{seed}", recs(50, seed), cold(seed), NOW)
    assert conn.execute("SELECT count(*) FROM fold_in_recs WHERE model_version = 'v-1'").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM fold_in_users WHERE model_version = 'v-1'").fetchone()[0] == 0
    assert events.watermark(conn, "v-1") == (0, 0)


def test_a_publish_refreshes_the_catalog_and_the_scale_and_keeps_recorded_events(stack, namespace):
    from movielens_recs.datasets.catalog import WHOLE_STARS

    schema, conn, movies, _ = namespace
    write(stack, schema, (5, 12, 3.5))
    grown = pa.concat_tables([movies, pa.table({"movie_id": pa.array([MOVIES + 1], pa.int32()), "title": ["New"],
                                                "genres": ["Drama"]})])
    events.prepare(conn, grown, WHOLE_STARS, PG_WRITER, PG_READER)
    write(stack, schema, (5, MOVIES + 1, 4.0))  # the new movie may be rated
    with pytest.raises(psycopg.errors.CheckViolation):
        write(stack, schema, (5, 13, 3.5))  # half stars no longer
    assert events.scale(conn) == list(WHOLE_STARS)
    assert conn.execute("SELECT movie_id, rating FROM rating_events ORDER BY event_id").fetchall() == [
        (12, 3.5), (MOVIES + 1, 4.0)]
