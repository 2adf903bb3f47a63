"""PostgreSQL publishing costs: COPY load against row-by-row inserts of the same rows, and how
long readers wait while the views are switched.

Runs in a schema of its own (the caller's connection factory sets it), publishing the same
table several times as new versions while a reader thread queries one user's recommendations in
a tight loop, as an app would. The reader is a thread of this process, so its slowest queries
also include waiting for the GIL while the loader writes CSV; the queries that overlap a switch
are reported apart, as the time readers can have been blocked by it.
"""

from __future__ import annotations

import statistics
import threading
import time
from datetime import datetime, timezone
from typing import Callable

import numpy as np
import pyarrow as pa
from psycopg import Connection, sql

from movielens_recs.publish import postgres as pg


def scaled_recommendations(sample: pa.Table, rows: int, n: int, seed: int = 0) -> pa.Table:
    """`rows` rows shaped like real output (n per user, titles from `sample`), for load figures
    at a size the dataset at hand does not reach."""
    rng = np.random.default_rng(seed)
    users = max(1, rows // n)
    titles = sample.column("title").to_numpy(zero_copy_only=False)
    movie_ids = sample.column("movie_id").to_numpy()
    pick = rng.integers(0, len(titles), users * n)
    return pa.table({
        "user_id": pa.array(np.repeat(np.arange(1, users + 1, dtype=np.int32), n)),
        "rank": pa.array(np.tile(np.arange(1, n + 1, dtype=np.int16), users)),
        "movie_id": pa.array(movie_ids[pick].astype(np.int32)),
        "title": pa.array(titles[pick]),
        "score": pa.array(np.sort(rng.uniform(3, 5, (users, n)).astype(np.float32), axis=1)[:, ::-1].ravel()),
    })


def _row_by_row(conn: Connection, table: pa.Table, sample_rows: int) -> float:
    sample = table.slice(0, min(sample_rows, table.num_rows)).to_pylist()
    conn.execute("DROP TABLE IF EXISTS bench_row_by_row")
    conn.execute("CREATE TABLE bench_row_by_row (user_id integer, rank smallint, movie_id integer, title text, score real)")
    started = time.perf_counter()
    with conn.transaction(), conn.cursor() as cur:
        for row in sample:
            cur.execute("INSERT INTO bench_row_by_row VALUES (%s, %s, %s, %s, %s)",
                        (row["user_id"], row["rank"], row["movie_id"], row["title"], row["score"]))
    seconds = time.perf_counter() - started
    conn.execute("DROP TABLE bench_row_by_row")
    return len(sample) / seconds


def measure_postgres(connect: Callable[[], Connection], recs: pa.Table, cold: pa.Table,
                     publishes: int = 3, insert_sample: int = 5_000) -> dict:
    n = int(max(recs.column("rank").to_pylist() or [1]))
    user_id = recs.column("user_id")[0].as_py()
    with connect() as conn:
        pg.publish(conn, recs, cold, "bench-0", datetime.now(timezone.utc), keep=2)

    latencies: list[tuple[float, float]] = []
    inconsistent = []
    stop = threading.Event()

    def reader():
        with connect() as r:
            while not stop.is_set():
                started = time.perf_counter()
                rows = r.execute("SELECT rank, model_version FROM recommendations WHERE user_id = %s ORDER BY rank",
                                 (user_id,)).fetchall()
                latencies.append((started, time.perf_counter() - started))
                if [row[0] for row in rows] != list(range(1, n + 1)) or len({row[1] for row in rows}) != 1:
                    inconsistent.append(rows)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    time.sleep(0.5)  # a baseline of undisturbed reads
    results = []
    try:
        with connect() as conn:
            for i in range(1, publishes + 1):
                results.append(pg.publish(conn, recs, cold, f"bench-{i}", datetime.now(timezone.utc), keep=2))
        time.sleep(0.2)
    finally:
        stop.set()
        thread.join(timeout=30)
    with connect() as conn:
        insert_rate = _row_by_row(conn, recs, insert_sample)

    copy_rate = statistics.median(r.rows_per_second for r in results)
    reads = [latency for _, latency in latencies]
    # the readers the switch could have blocked: queries running at any moment of a switch
    during_switch = [latency for started, latency in latencies
                     if any(started <= end and started + latency >= begin for begin, end in (r.switch_window for r in results))]
    return {
        "rows": recs.num_rows,
        "publishes": publishes,
        "load_seconds": round(statistics.median(r.load_seconds for r in results), 3),
        "copy_rows_per_second": round(copy_rate),
        "row_by_row_rows_per_second": round(insert_rate),
        "row_by_row_sample_rows": min(insert_sample, recs.num_rows),
        "copy_speedup_vs_row_by_row": round(copy_rate / insert_rate, 1),
        "switch_ms_max": round(max(r.switch_seconds for r in results) * 1000, 2),
        "reader_queries": len(reads),
        "reader_ms_median": round(statistics.median(reads) * 1000, 3) if reads else None,
        "reader_ms_max": round(max(reads) * 1000, 3) if reads else None,
        "reader_queries_during_switch": len(during_switch),
        "reader_ms_max_during_switch": round(max(during_switch) * 1000, 3) if during_switch else None,
        "reader_inconsistent_reads": len(inconsistent),
    }


def drop_schema(conn: Connection, schema: str, *more: str) -> None:
    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
        sql.SQL(", ").join(sql.Identifier(name) for name in (schema, *more))))
