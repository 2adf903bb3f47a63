"""Small recommendation tables for the publish tests."""

import threading
from contextlib import contextmanager
from datetime import datetime, timezone

import pyarrow as pa

N = 10
NOW = datetime(2026, 11, 21, tzinfo=timezone.utc)


def recs(users: int, version_seed: int, bad_last_row: bool = False) -> pa.Table:
    user_ids = [u for u in range(1, users + 1) for _ in range(N)]
    ranks = [r for _ in range(users) for r in range(1, N + 1)]
    scores = [float(10 - r + version_seed) for r in ranks]
    if bad_last_row:
        scores[-1] = None  # NOT NULL: COPY fails on the very last row, after most data was sent
    return pa.table({
        "user_id": pa.array(user_ids, pa.int32()), "rank": pa.array(ranks, pa.int16()),
        "movie_id": pa.array([(u * 7 + r + version_seed) % 5000 for u, r in zip(user_ids, ranks)], pa.int32()),
        "title": pa.array([f"Movie, \"{r}\" ({version_seed})" for r in ranks]),
        "score": pa.array(scores, pa.float32()),
    })


def cold(version_seed: int) -> pa.Table:
    return pa.table({"rank": pa.array(range(1, N + 1), pa.int16()), "movie_id": pa.array(range(100, 100 + N), pa.int32()),
                     "title": [f"Popular {i}" for i in range(N)], "score": pa.array([float(version_seed)] * N, pa.float32())})


@contextmanager
def running(stop: threading.Event, *targets):
    """Each target in a thread of its own (readers looping until `stop` is set) for as long as the
    block runs; then `stop` is set and every thread joined."""
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
