"""Measure an ALS model (and the popularity baseline) on a held-out set, on Spark.

Ranking lists are computed by models.topn for the users with held-out ratings, excluding what
each user rated in training; the metrics themselves are the plain functions of metrics.py,
applied to the collected lists (k items for each test user), so what is tested by hand is
exactly what runs.
"""

from __future__ import annotations

import numpy as np

from movielens_recs.evaluation.metrics import catalog_coverage, ranking_metrics
from movielens_recs.models.topn import top_n_spark


def rating_errors(model, test) -> dict:
    from pyspark.sql import functions as F

    predictions = model.transform(test)  # coldStartStrategy=drop: unknown users/items drop out
    row = predictions.select(
        F.sqrt(F.avg((F.col("prediction") - F.col("rating")) ** 2)).alias("rmse"),
        F.avg(F.abs(F.col("prediction") - F.col("rating"))).alias("mae"),
        F.count("*").alias("predicted"),
    ).first()
    total = test.count()
    if not row["predicted"]:
        raise ValueError("the model could predict none of the held-out ratings")
    return {"rmse": float(row["rmse"]), "mae": float(row["mae"]), "predicted": int(row["predicted"]),
            "held_out": int(total), "dropped_cold_start": int(total - row["predicted"])}


def _item_matrix(factors_df):
    pdf = factors_df.toPandas()
    return pdf["id"].to_numpy(dtype=np.int64), np.vstack(pdf["features"].to_numpy()).astype(np.float32)


def _test_users_with_seen(user_factors, train, test):
    from pyspark.sql import functions as F

    test_users = test.select("user_id").distinct()
    seen = train.groupBy("user_id").agg(F.collect_list("movie_id").alias("seen"))
    return (
        user_factors.withColumnRenamed("id", "user_id")
        .join(test_users, "user_id")
        .join(seen, "user_id", "left")
    )


def _relevant(test) -> dict:
    from pyspark.sql import functions as F

    rows = test.groupBy("user_id").agg(F.collect_set("movie_id").alias("items")).collect()
    return {r["user_id"]: set(r["items"]) for r in rows}


def _lists(recs) -> dict:
    rows = recs.select("user_id", "movie_id", "rank").collect()
    lists: dict[int, list] = {}
    for r in sorted(rows, key=lambda r: (r["user_id"], r["rank"])):
        lists.setdefault(r["user_id"], []).append(r["movie_id"])
    return lists


def ranking_report(model, train, test, k: int) -> dict:
    """Ranking metrics of the model and of the popularity baseline, on the same users."""
    from pyspark.sql import functions as F

    relevant = _relevant(test)
    item_ids, item_factors = _item_matrix(model.itemFactors)
    users = _test_users_with_seen(model.userFactors, train, test)
    model_lists = _lists(top_n_spark(users, item_ids, item_factors, k))

    # The baseline ranks every training item by its number of training ratings: the same
    # scorer with one "factor" per item (its count) and a factor of 1 for every user.
    counts = train.groupBy("movie_id").count().toPandas()
    pop_ids = counts["movie_id"].to_numpy(dtype=np.int64)
    pop_factors = counts["count"].to_numpy(dtype=np.float32).reshape(-1, 1)
    ones = users.select("user_id", F.array(F.lit(1.0).cast("float")).alias("features"), "seen")
    baseline_lists = _lists(top_n_spark(ones, pop_ids, pop_factors, k))

    catalog = len(pop_ids)
    model_metrics = ranking_metrics(model_lists, relevant, k).as_dict()
    model_metrics["coverage"] = catalog_coverage(model_lists, catalog, k)
    baseline_metrics = ranking_metrics(baseline_lists, relevant, k).as_dict()
    baseline_metrics["coverage"] = catalog_coverage(baseline_lists, catalog, k)
    return {"model": model_metrics, "baseline": baseline_metrics, "catalog_items": catalog}
