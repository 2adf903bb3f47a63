"""The evaluation report's breakdowns, as plain functions over plain values (checked by hand).

A single RMSE or NDCG hides who a model serves well. The report splits both by user activity
(how many ratings the user had in training), and describes a set of lists by how much of the
catalog it reaches and how far it leans on already popular movies.

- activity bucket: the user's training ratings, cut at ACTIVITY_EDGES ("20-49" holds 20..49)
- RMSE by bucket: sqrt(sum of squared errors / ratings) over the bucket's held-out ratings
- NDCG@k by bucket: the mean of the users' NDCG@k (metrics.user_ranking) within the bucket
- coverage: distinct movies recommended / movies in the catalog
- head share: the share of all recommendations that go to the 10% most-rated movies
- Gini: of how often each catalog movie is recommended (0: all equally, 1: one movie only)
- decile shares: the share of recommendations in each tenth of the catalog by rating count,
  most rated first; a list as skewed as popularity puts nearly everything in the first
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Iterable, Mapping, Sequence

from movielens_recs.evaluation.metrics import user_ranking

ACTIVITY_EDGES = (20, 50, 100, 250)


def bucket_labels(edges: Sequence[int] = ACTIVITY_EDGES) -> list[str]:
    labels = [f"<{edges[0]}"]
    labels += [f"{lo}-{hi - 1}" for lo, hi in zip(edges, edges[1:])]
    return labels + [f"{edges[-1]}+"]


def activity_bucket(ratings: int, edges: Sequence[int] = ACTIVITY_EDGES) -> str:
    labels = bucket_labels(edges)
    for label, edge in zip(labels, edges):
        if ratings < edge:
            return label
    return labels[-1]


def rmse_by_activity(errors: Mapping[int, tuple[float, int]], activity: Mapping[int, int],
                     edges: Sequence[int] = ACTIVITY_EDGES) -> list[dict]:
    """`errors`: user -> (sum of squared errors, ratings); `activity`: user -> training ratings
    (a user missing from it had none). One row per bucket, in order; empty buckets have rmse None."""
    sums = {label: [0.0, 0, 0] for label in bucket_labels(edges)}
    for user, (sse, n) in errors.items():
        row = sums[activity_bucket(activity.get(user, 0), edges)]
        row[0] += sse
        row[1] += n
        row[2] += 1
    return [{"bucket": label, "users": users, "ratings": n, "rmse": math.sqrt(sse / n) if n else None}
            for label, (sse, n, users) in sums.items()]


def ndcg_by_activity(lists: Mapping, relevant: Mapping, activity: Mapping[int, int], k: int,
                     edges: Sequence[int] = ACTIVITY_EDGES) -> list[dict]:
    """Over every user in `relevant`, as metrics.ranking_metrics: a user with no list scores 0."""
    sums = {label: [0.0, 0] for label in bucket_labels(edges)}
    for user, items in relevant.items():
        row = sums[activity_bucket(activity.get(user, 0), edges)]
        row[0] += user_ranking(lists.get(user, []), set(items), k).ndcg
        row[1] += 1
    return [{"bucket": label, "users": n, "ndcg": total / n if n else None} for label, (total, n) in sums.items()]


def recommendation_counts(lists: Mapping, k: int) -> Counter:
    """How many lists each movie appears in (its top k only)."""
    return Counter(item for items in lists.values() for item in list(items)[:k])


def popularity_skew(recommended: Mapping[int, int], rating_counts: Mapping[int, int]) -> dict:
    """`recommended`: movie -> times recommended; `rating_counts`: movie -> ratings, for every
    movie of the catalog (ties in popularity are broken by movie id, so it is stable)."""
    counts = {**{movie: 0 for movie in recommended}, **rating_counts}  # a promoted movie may be unrated
    catalog = sorted(counts, key=lambda m: (-counts[m], m))
    if not catalog:
        raise ValueError("the catalog is empty")
    total = sum(recommended.values())
    head = catalog[:max(1, math.ceil(len(catalog) / 10))]
    deciles = [0] * 10
    for position, movie in enumerate(catalog):
        deciles[position * 10 // len(catalog)] += recommended.get(movie, 0)
    return {
        "catalog": len(catalog),
        "recommendations": total,
        "coverage": sum(1 for m in catalog if recommended.get(m, 0)) / len(catalog),
        "head_share": sum(recommended.get(m, 0) for m in head) / total if total else None,
        "gini": gini(recommended.get(m, 0) for m in catalog),
        "decile_shares": [d / total for d in deciles] if total else None,
    }


def gini(values: Iterable[float]) -> float:
    """Of a non-negative distribution: sum over i of (2i - n - 1) x_i / (n sum x), x ascending."""
    xs = sorted(values)
    n, total = len(xs), sum(xs)
    if not n or not total:
        return 0.0
    return sum((2 * i - n - 1) * x for i, x in enumerate(xs, start=1)) / (n * total)


def histogram(counts: Mapping[float, int], lo: float, hi: float, width: float) -> list[dict]:
    """Bins [lo, lo + width), ... covering [lo, hi]; `counts` are keyed by each bin's lower edge
    (values were floored to it, and clipped to [lo, hi] first)."""
    bins = int(round((hi - lo) / width)) + 1
    rows = [{"low": round(lo + i * width, 6), "count": 0} for i in range(bins)]
    for edge, count in counts.items():
        index = min(bins - 1, max(0, int(round((edge - lo) / width))))
        rows[index]["count"] += int(count)
    return rows
