"""One fold-in of one dataset's namespace, free of Airflow: the events since the watermark, the
affected users' new lists from the served version, published with the watermark in one
transaction.

The watermark is per served version. A rerun after a failure finds it where it was (the failed
transaction moved nothing), so it neither skips nor counts twice. When another version is
published, its watermark starts at zero: the models are trained on MovieLens releases, which
hold none of these events, so the next fold-in redoes every user with events against the new
version, and until then readers get that version's own lists.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Callable

import pyarrow as pa
from psycopg import Connection

from movielens_recs.foldin import events
from movielens_recs.foldin.fold import FoldInModel, merge_ratings
from movielens_recs.publish import postgres as pg_publish

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FoldInResult:
    model_version: str | None
    status: str  # folded, up to date, nothing published, no events table
    events_through: int = 0
    events: int = 0  # events in (watermark, events_through]
    users: int = 0  # users with such events
    folded_users: int = 0  # users whose list changed (others' movies are all unknown to the model)
    sequence: int = 0
    seconds: float = 0.0
    phases: dict | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def has_events_table(conn: Connection) -> bool:
    return conn.execute("SELECT to_regclass(%s)", (events.EVENTS_TABLE,)).fetchone()[0] is not None


# compute(version, users, their events) -> the users' new lists (FOLD_IN_COLUMNS of publish/postgres.py)
Compute = Callable[[str, list[int], pa.Table], pa.Table]


def on_driver(load_model: Callable[[str], tuple[FoldInModel, str, int]]) -> Compute:
    """Compute in this process. `load_model(version)` returns (model, its model store URI, its
    list length)."""
    def compute(version: str, users: list[int], new: pa.Table) -> pa.Table:
        model, model_uri, top_n = load_model(version)
        return model.recommend(merge_ratings(model.known_ratings(model_uri, users), new), top_n)

    return compute


def fold_in(conn: Connection, compute: Compute) -> FoldInResult:
    """`conn` works in the namespace's schema; `compute` makes the lists (on_driver, or on Spark)."""
    started = time.perf_counter()
    pg_publish.ensure_schema(conn)
    served = pg_publish.current_version(conn)
    if served is None:
        return FoldInResult(None, "nothing published")
    if not has_events_table(conn):
        return FoldInResult(served, "no events table")
    if not pg_publish.serves_fold_ins(conn):
        pg_publish.switch(conn, served)  # the same version, under the view that serves fold-ins
    through = events.high_water(conn)
    after, sequence = events.start(conn, served)
    if through <= after:
        return FoldInResult(served, "up to date", after, sequence=sequence,
                            seconds=time.perf_counter() - started)
    phases = {}
    mark = time.perf_counter()
    users, count = events.pending(conn, after, through)
    new = events.ratings_of(conn, users, through)
    phases["read_events"] = time.perf_counter() - mark

    mark = time.perf_counter()
    recs = compute(served, users, new)
    phases["compute"] = time.perf_counter() - mark

    mark = time.perf_counter()
    generated_at = datetime.now(timezone.utc)
    with conn.transaction():
        folded = pg_publish.replace_users(conn, served, recs, sequence + 1, generated_at)
        events.advance(conn, served, after, through, sequence + 1)
    phases["publish"] = time.perf_counter() - mark
    result = FoldInResult(served, "folded", through, count, len(users), folded, sequence + 1,
                          time.perf_counter() - started, {k: round(v, 3) for k, v in phases.items()})
    log.info("fold-in %d of %s: %d events (%d..%d] of %d users, %d lists replaced in %.2f s %s", sequence + 1,
             served, count, after, through, len(users), folded, result.seconds, result.phases)
    return result
