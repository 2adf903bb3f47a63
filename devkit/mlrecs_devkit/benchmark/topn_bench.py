"""Top-N throughput on one trained model, three ways in the same run:

- the project's recommend job (blocked numpy scoring in mapInPandas, seen movies excluded);
- Spark's own `ALSModel.recommendForAllUsers(N)` (which does not even exclude seen movies);
- the machine's limit: all the float32 products and the top-N selection in numpy on the driver,
  with no Spark around them. The recommend job skips products that cannot make a user's top N
  (models/topn.py), so it can beat this estimate.

Each Spark variant is forced with a `noop` write (all work, no output I/O) and timed as the best
of `repeats` runs, so JVM and Python-worker start-up does not count against either.
"""

from __future__ import annotations

import time

import numpy as np

from movielens_recs.models.topn import top_n_dense
from movielens_recs.recommend.topn_job import recommend_all, seen_movies


def _best_of(repeats: int, action) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def machine_limit(user_factors: np.ndarray, item_factors: np.ndarray, n: int, repeats: int = 2) -> float:
    """Seconds for every user's top n as bare numpy: every product, then the selection (no
    seen-movie masking, no Spark, no pruning), as the issue defines the machine's limit."""
    empty = [np.empty(0, dtype=np.int64)] * len(user_factors)
    return _best_of(repeats, lambda: top_n_dense(user_factors, item_factors, empty, n))


def measure(model, rating_model, ratings, movies, n: int = 10, repeats: int = 2) -> dict:
    """`model` is the ranking model whose scores order the lists (what recommendForAllUsers uses
    too); the job also attaches `rating_model`'s predicted ratings, as it does when it runs."""
    users = model.userFactors.count()
    items = model.itemFactors.count()

    ours = _best_of(repeats, lambda: recommend_all(model, rating_model, ratings, movies, n).write.format("noop").mode("overwrite").save())
    # the part of the job that is not scoring: gathering each user's rated movies (a shuffle)
    grouping = _best_of(repeats, lambda: seen_movies(ratings).write.format("noop").mode("overwrite").save())
    spark = _best_of(repeats, lambda: model.recommendForAllUsers(n).write.format("noop").mode("overwrite").save())

    u = model.userFactors.toPandas()
    i = model.itemFactors.toPandas()
    limit = machine_limit(np.vstack(u["features"].to_numpy()).astype(np.float32),
                          np.vstack(i["features"].to_numpy()).astype(np.float32), n, repeats)
    return {
        "users": users,
        "items": items,
        "rank": model.rank,
        "top_n": n,
        "recommend_job": {"seconds": round(ours, 3), "users_per_second": round(users / ours, 1)},
        "recommend_job_grouping_seen_seconds": round(grouping, 3),
        "recommend_for_all_users": {"seconds": round(spark, 3), "users_per_second": round(users / spark, 1)},
        "machine_limit": {"seconds": round(limit, 4), "users_per_second": round(users / limit, 1)},
        "speedup_vs_recommend_for_all_users": round(spark / ours, 2),
        "fraction_of_machine_limit": round(limit / ours, 4),
    }
