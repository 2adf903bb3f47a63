"""Measure a model version, its baselines and the champion on held-out ratings, on Spark.

Ranking lists are computed by models.topn for the users with held-out ratings, excluding what
each user rated in training; the metrics themselves are the plain functions of metrics.py,
applied to the collected lists (k items for each test user), so what is tested by hand is
exactly what runs.

The champion is compared on the fair set only: the candidate's held-out ratings that the
champion did not train on either. Under the hash split that is every held-out rating both
versions' data contain; whatever the split, a champion is never scored on ratings it learned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from movielens_recs.evaluation.breakdown import (
    ACTIVITY_EDGES,
    histogram,
    ndcg_by_activity,
    popularity_skew,
    recommendation_counts,
    rmse_by_activity,
)
from movielens_recs.evaluation.metrics import catalog_coverage, ranking_metrics
from movielens_recs.models.bias import with_baseline
from movielens_recs.models.topn import top_n_spark
from movielens_recs.recommend.topn_job import seen_movies

# "Liked": the relevance of the second NDCG the report carries, as in most MovieLens papers.
LIKED = 4.0


def _errors(predictions, held_out: int, column: str = "prediction") -> dict:
    from pyspark.sql import functions as F

    row = predictions.select(
        F.sqrt(F.avg((F.col(column) - F.col("rating")) ** 2)).alias("rmse"),
        F.avg(F.abs(F.col(column) - F.col("rating"))).alias("mae"),
        F.count("*").alias("predicted"),
    ).first()
    if not row["predicted"]:
        raise ValueError("the model could predict none of the held-out ratings")
    return {"rmse": float(row["rmse"]), "mae": float(row["mae"]), "predicted": int(row["predicted"]),
            "held_out": int(held_out), "dropped_cold_start": int(held_out - row["predicted"])}


def rating_errors(rating_model, test) -> dict:
    """RMSE and MAE of the rating model (models.training.RatingModel) on `test`."""
    return _errors(rating_model.predict(test), test.count())


def bias_errors(terms, user_bias, item_bias, test) -> dict:
    """The bias baseline (mu + b_u + b_i) on the same ratings."""
    return _errors(with_baseline(test, terms, user_bias, item_bias), test.count(), "baseline")


def _item_matrix(factors_df):
    pdf = factors_df.toPandas()
    return pdf["id"].to_numpy(dtype=np.int64), np.vstack(pdf["features"].to_numpy()).astype(np.float32)




def relevant_items(test, min_rating: float | None = None) -> dict:
    from pyspark.sql import functions as F

    if min_rating is not None:
        test = test.where(F.col("rating") >= min_rating)
    rows = test.groupBy("user_id").agg(F.collect_set("movie_id").alias("items")).collect()
    return {r["user_id"]: set(r["items"]) for r in rows}


def _lists(recs) -> dict:
    rows = recs.select("user_id", "movie_id", "rank").collect()
    lists: dict[int, list] = {}
    for r in sorted(rows, key=lambda r: (r["user_id"], r["rank"])):
        lists.setdefault(r["user_id"], []).append(r["movie_id"])
    return lists


def model_lists(ranker, seen, users, k: int) -> dict:
    """Each of `users`' top k by `ranker`'s scores, minus their `seen` movies (seen_movies())."""
    item_ids, item_factors = _item_matrix(ranker.itemFactors)
    scored = ranker.userFactors.withColumnRenamed("id", "user_id").join(users, "user_id").join(seen, "user_id", "left")
    return _lists(top_n_spark(scored, item_ids, item_factors, k))


def popularity_lists(train, seen, users, k: int) -> dict:
    """Most-rated training movies first, minus each user's `seen` movies: the same scorer with one
    "factor" per item (its count) and a factor of 1 for every user."""
    from pyspark.sql import functions as F

    counts = train.groupBy("movie_id").count().toPandas()
    ones = users.select("user_id", F.array(F.lit(1.0).cast("float")).alias("features")).join(seen, "user_id", "left")
    return _lists(top_n_spark(ones, counts["movie_id"].to_numpy(dtype=np.int64),
                              counts["count"].to_numpy(dtype=np.float32).reshape(-1, 1), k))


def _scores(lists: dict, relevant: dict, liked: dict, catalog: int, k: int) -> dict:
    scores = ranking_metrics(lists, relevant, k).as_dict()
    scores["ndcg_at_k_liked"] = ranking_metrics(lists, liked, k).ndcg_at_k if liked else 0.0
    scores["users_liked"] = len(liked)
    scores["coverage"] = catalog_coverage(lists, catalog, k)
    return scores


@dataclass(frozen=True)
class RankingLists:
    """The ranking model's and popularity's lists for the users with held-out ratings, and what
    each of those users held out: what the metrics and the report's breakdowns are computed from."""

    k: int
    model: dict
    popularity: dict
    relevant: dict
    liked: dict
    catalog_items: int

    def report(self) -> dict:
        return {
            "model": _scores(self.model, self.relevant, self.liked, self.catalog_items, self.k),
            "popularity": _scores(self.popularity, self.relevant, self.liked, self.catalog_items, self.k),
            "catalog_items": self.catalog_items,
        }


def ranking_lists(ranker, train, test, k: int) -> RankingLists:
    """Both lists on the same users and under the same rules (each user's training movies left out)."""
    users = test.select("user_id").distinct()
    seen = seen_movies(train).cache()  # both lists leave out the same movies; gathered once
    lists = RankingLists(
        k=k,
        model=model_lists(ranker, seen, users, k),
        popularity=popularity_lists(train, seen, users, k),
        relevant=relevant_items(test),
        liked=relevant_items(test, LIKED),
        catalog_items=train.select("movie_id").distinct().count(),
    )
    seen.unpersist()
    return lists


def _per_user_squared_errors(predictions, column: str) -> dict:
    from pyspark.sql import functions as F

    rows = (predictions.where(F.col(column).isNotNull())
            .groupBy("user_id").agg(F.sum((F.col(column) - F.col("rating")) ** 2).alias("sse"),
                                    F.count("*").alias("n")).collect())
    return {r["user_id"]: (float(r["sse"]), int(r["n"])) for r in rows}


def value_counts(df, column: str) -> dict:
    """{value: rows}; for columns with few enough values to hold on the driver (users, movies)."""
    return {r[0]: int(r[1]) for r in df.groupBy(column).count().collect()}


def _floored(column: str, lo: float, hi: float, width: float):
    from pyspark.sql import functions as F

    clipped = F.least(F.greatest(F.col(column), F.lit(lo)), F.lit(hi))
    return (F.floor((clipped - F.lit(lo)) / F.lit(width)) * F.lit(width) + F.lit(lo)).alias("bin")


def report_breakdown(rating_model, train, test, lists: RankingLists, width: float = 0.25) -> dict:
    """What the evaluation report draws beyond the metrics (breakdown.py says how each is defined)."""
    from pyspark.sql import functions as F

    activity = value_counts(train, "user_id")
    predicted = rating_model.predict(test).cache()
    baseline = with_baseline(test, rating_model.terms, rating_model.user_bias, rating_model.item_bias)
    bounds = test.agg(F.min("rating"), F.max("rating")).first()
    lo, hi = float(bounds[0]) - 1.0, float(bounds[1]) + 1.0
    predicted_bins = value_counts(predicted.where(F.col("prediction").isNotNull())
                                  .select(_floored("prediction", lo, hi, width)), "bin")
    actual_bins = value_counts(test.select(_floored("rating", lo, hi, width)), "bin")
    rating_counts = value_counts(train, "movie_id")
    breakdown = {
        "k": lists.k,
        "activity_edges": list(ACTIVITY_EDGES),
        "rmse_by_activity": {
            "model": rmse_by_activity(_per_user_squared_errors(predicted, "prediction"), activity),
            "bias": rmse_by_activity(_per_user_squared_errors(baseline, "baseline"), activity),
        },
        "ndcg_by_activity": {
            "model": ndcg_by_activity(lists.model, lists.relevant, activity, lists.k),
            "popularity": ndcg_by_activity(lists.popularity, lists.relevant, activity, lists.k),
        },
        "ratings": {
            "width": width,
            "predicted": histogram(predicted_bins, lo, hi, width),
            "actual": histogram(actual_bins, lo, hi, width),
        },
        "lists": {
            "model": popularity_skew(recommendation_counts(lists.model, lists.k), rating_counts),
            "popularity": popularity_skew(recommendation_counts(lists.popularity, lists.k), rating_counts),
        },
    }
    predicted.unpersist()
    return breakdown


def fair_comparison(candidate: dict, champion: dict, test, k: int) -> dict:
    """Both versions on the held-out ratings neither trained on. `candidate`/`champion`: dicts
    with model_id, rating (RatingModel), ranker (ALSModel) and train (DataFrame).

    Ranking lists leave out what the user rated in either version's training set, so the two
    lists are drawn from the same movies and no fair-set movie is ever left out."""
    fair = test.join(champion["train"].select("user_id", "movie_id"), ["user_id", "movie_id"], "left_anti").cache()
    ratings = fair.count()
    result = {"champion_id": champion["model_id"], "ratings": ratings, "test_ratings": test.count(),
              "users": 0, "candidate": None, "champion": None}
    if ratings == 0:
        return result
    seen = seen_movies(candidate["train"].select("user_id", "movie_id")
                       .unionByName(champion["train"].select("user_id", "movie_id"))).cache()
    users = fair.select("user_id").distinct()
    relevant = relevant_items(fair)
    result["users"] = len(relevant)
    for side in ("candidate", "champion"):
        version = candidate if side == "candidate" else champion
        errors = rating_errors(version["rating"], fair)
        lists = model_lists(version["ranker"], seen, users, k)
        result[side] = {"rmse": errors["rmse"], "mae": errors["mae"], "predicted": errors["predicted"],
                        "ndcg_at_k": ranking_metrics(lists, relevant, k).ndcg_at_k}
    fair.unpersist()
    seen.unpersist()
    return result
