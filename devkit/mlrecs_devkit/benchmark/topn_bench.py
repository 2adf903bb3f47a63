"""Top-N throughput on one trained model, three ways in the same run:

- the project's recommend job (blocked numpy scoring in mapInPandas, seen movies excluded);
- Spark's own `ALSModel.recommendForAllUsers(N)` (which does not even exclude seen movies);
- the machine's limit: all the float32 products and the top-N selection in numpy on the driver,
  with no Spark around them. The recommend job skips products that cannot make a user's top N
  (models/topn.py), so it can beat this estimate.

Each Spark variant is forced with a `noop` write (all work, no output I/O) and timed as the best
of `repeats` rounds, so JVM and Python-worker start-up does not count against either. The variants
take turns, round by round: run one after the other, the first paid for the JVM's warm-up and
the next ran on it (at 1M ratings the job's four runs took 8.7, 4.1, 3.5 and 3.3 s in a fresh
application, then 2.4 and 2.1 s after recommendForAllUsers had run). Every run's time is kept.
"""

from __future__ import annotations

import time

import numpy as np

from movielens_recs.models.topn import top_n_dense
from movielens_recs.recommend.topn_job import recommend_all, seen_movies


def _best_of(repeats: int, action) -> float:
    return min(_in_turns(repeats, {"action": action})["action"])


def _in_turns(repeats: int, actions: dict) -> dict[str, list[float]]:
    """Seconds of every run of each action, the actions taking turns for `repeats` rounds, so
    that none runs only on a JVM the others have warmed."""
    times: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(repeats):
        for name, action in actions.items():
            started = time.perf_counter()
            action()
            times[name].append(time.perf_counter() - started)
    return times


def machine_limit(user_factors: np.ndarray, item_factors: np.ndarray, n: int, repeats: int = 2) -> float:
    """Seconds for every user's top n as bare numpy: every product, then the selection (no
    seen-movie masking, no Spark, no pruning), as the issue defines the machine's limit."""
    empty = [np.empty(0, dtype=np.int64)] * len(user_factors)
    return _best_of(repeats, lambda: top_n_dense(user_factors, item_factors, empty, n))


def measure(model, rating_model, ratings, movies, n: int = 10, repeats: int = 3) -> dict:
    """`model` is the ranking model whose scores order the lists (what recommendForAllUsers uses
    too); the job also attaches `rating_model`'s predicted ratings, as it does when it runs."""
    users = model.userFactors.count()
    items = model.itemFactors.count()

    def noop(frame):
        return lambda: frame().write.format("noop").mode("overwrite").save()

    runs = _in_turns(repeats, {
        "recommend_job": noop(lambda: recommend_all(model, rating_model, ratings, movies, n)),
        # the part of the job that is not scoring: gathering each user's rated movies (a shuffle)
        "grouping_seen": noop(lambda: seen_movies(ratings)),
        "recommend_for_all_users": noop(lambda: model.recommendForAllUsers(n)),
    })
    ours, grouping, spark = (min(runs[k]) for k in ("recommend_job", "grouping_seen", "recommend_for_all_users"))

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
        "runs_seconds": {name: [round(t, 3) for t in times] for name, times in runs.items()},
    }
