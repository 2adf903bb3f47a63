"""Per-user and per-movie biases: the baseline every rating model is judged against, and the
first half of the rating model itself.

    prediction = mu + b_u + b_i
    b_i = sum over the movie's ratings of (r - mu)         / (damping + n_i)
    b_u = sum over the user's ratings of (r - mu - b_i)    / (damping + n_u)

Damping shrinks the biases of users and movies with few ratings towards zero, so one 5-star
rating does not make a movie the best in the catalog. A user or movie the biases have not seen
gets a bias of zero. `fit_arrays` is the plain reference (checked on a case computed by hand);
`fit_spark` computes the same sums on the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BiasTerms:
    global_mean: float
    damping: float


def fit_arrays(users, items, ratings, damping: float) -> tuple[BiasTerms, dict, dict]:
    """(terms, {user: b_u}, {item: b_i}) from three equal-length sequences."""
    users, items = np.asarray(users), np.asarray(items)
    ratings = np.asarray(ratings, dtype=np.float64)
    if len(ratings) == 0:
        raise ValueError("no ratings to fit biases on")
    mu = float(ratings.mean())
    item_ids, item_index = np.unique(items, return_inverse=True)
    item_bias = np.bincount(item_index, ratings - mu) / (damping + np.bincount(item_index))
    user_ids, user_index = np.unique(users, return_inverse=True)
    residual = ratings - mu - item_bias[item_index]
    user_bias = np.bincount(user_index, residual) / (damping + np.bincount(user_index))
    return (BiasTerms(mu, float(damping)), dict(zip(user_ids.tolist(), user_bias.tolist())),
            dict(zip(item_ids.tolist(), item_bias.tolist())))


def fit_spark(train, damping: float):
    """(terms, users DataFrame (user_id, user_bias), items DataFrame (movie_id, item_bias))."""
    from pyspark.sql import functions as F

    mu = train.agg(F.avg("rating")).first()[0]
    if mu is None:
        raise ValueError("no ratings to fit biases on")
    items = train.groupBy("movie_id").agg(
        (F.sum(F.col("rating") - F.lit(mu)) / (F.lit(damping) + F.count("*"))).alias("item_bias"))
    users = (
        train.join(F.broadcast(items), "movie_id")
        .groupBy("user_id")
        .agg((F.sum(F.col("rating") - F.lit(mu) - F.col("item_bias")) / (F.lit(damping) + F.count("*")))
             .alias("user_bias"))
    )
    return BiasTerms(float(mu), float(damping)), users, items


def with_baseline(pairs, terms: BiasTerms, users, items, column: str = "baseline"):
    """`pairs` (user_id, movie_id, ...) plus `column` = mu + b_u + b_i, unknown ones counted as 0."""
    from pyspark.sql import functions as F

    return (
        pairs.join(users, "user_id", "left")
        .join(F.broadcast(items), "movie_id", "left")
        .withColumn(column, F.lit(terms.global_mean) + F.coalesce("user_bias", F.lit(0.0))
                    + F.coalesce("item_bias", F.lit(0.0)))
        .drop("user_bias", "item_bias")
    )
