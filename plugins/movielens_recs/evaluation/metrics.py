"""Metrics, as plain functions over plain values so they can be checked on cases computed by hand.

Ranking metrics use binary relevance: an item is relevant to a user when it is among the user's
held-out ratings. Each is averaged over the users who have held-out ratings; a user for whom
the model recommends nothing counts as zero, so dropping hard users cannot flatter a model.

- precision@k = hits in the top k / k
- recall@k    = hits in the top k / number of relevant items
- NDCG@k      = DCG@k / ideal DCG@k, with gain 1 / log2(rank + 1)
- MAP@k       = mean over users of AP@k = (sum of precision@i at each hit i <= k) / min(k, relevant)
- coverage    = distinct items recommended to anyone / items in the catalog
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Iterable, Mapping, Sequence


def rmse(actual: Sequence[float], predicted: Sequence[float]) -> float:
    _same_length(actual, predicted)
    return math.sqrt(sum((a - p) ** 2 for a, p in zip(actual, predicted)) / len(actual))


def mae(actual: Sequence[float], predicted: Sequence[float]) -> float:
    _same_length(actual, predicted)
    return sum(abs(a - p) for a, p in zip(actual, predicted)) / len(actual)


def _same_length(actual, predicted) -> None:
    if len(actual) != len(predicted):
        raise ValueError(f"{len(actual)} actual values but {len(predicted)} predictions")
    if not actual:
        raise ValueError("no predictions to measure")


@dataclass(frozen=True)
class UserRanking:
    precision: float
    recall: float
    ndcg: float
    average_precision: float


def user_ranking(recommended: Sequence, relevant: set, k: int) -> UserRanking:
    """The ranking metrics of one user's list (best first) against that user's relevant items."""
    if k <= 0:
        raise ValueError("k must be positive")
    if not relevant:
        raise ValueError("a user without relevant items has no ranking metrics")
    top = list(recommended[:k])
    hits = 0
    dcg = 0.0
    precision_sum = 0.0
    for position, item in enumerate(top, start=1):
        if item in relevant:
            hits += 1
            dcg += 1.0 / math.log2(position + 1)
            precision_sum += hits / position
    ideal = sum(1.0 / math.log2(p + 1) for p in range(1, min(len(relevant), k) + 1))
    return UserRanking(
        precision=hits / k,
        recall=hits / len(relevant),
        ndcg=dcg / ideal,
        average_precision=precision_sum / min(len(relevant), k),
    )


@dataclass(frozen=True)
class RankingMetrics:
    k: int
    users: int
    precision_at_k: float
    recall_at_k: float
    ndcg_at_k: float
    map_at_k: float

    def as_dict(self) -> dict:
        return asdict(self)


def mean_ranking(per_user: Iterable[UserRanking], k: int) -> RankingMetrics:
    rows = list(per_user)
    if not rows:
        raise ValueError("no users with held-out ratings to rank for")
    n = len(rows)
    return RankingMetrics(
        k=k,
        users=n,
        precision_at_k=sum(r.precision for r in rows) / n,
        recall_at_k=sum(r.recall for r in rows) / n,
        ndcg_at_k=sum(r.ndcg for r in rows) / n,
        map_at_k=sum(r.average_precision for r in rows) / n,
    )


def ranking_metrics(recommended: Mapping, relevant: Mapping, k: int) -> RankingMetrics:
    """Average over every user in `relevant`; users missing from `recommended` score zero."""
    return mean_ranking((user_ranking(recommended.get(u, []), set(items), k) for u, items in relevant.items()), k)


def catalog_coverage(recommended: Mapping, catalog_size: int, k: int) -> float:
    if catalog_size <= 0:
        raise ValueError("catalog is empty")
    distinct = {item for items in recommended.values() for item in list(items)[:k]}
    return len(distinct) / catalog_size
