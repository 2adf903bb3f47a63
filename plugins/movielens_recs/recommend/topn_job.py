"""The body of spark_jobs/recommend.py, in the package so that tests can run it on one session.

Cold-start rule (users the model does not know): the N movies with the most ratings in the
snapshot among those whose average rating is at least `cold_start_min_average` (default 3.5),
ties broken by the higher average, then the lower movie id. "Most rated" alone would favour
well-known but mediocre films; the floor on the average keeps the list to ones people liked.
"""

from __future__ import annotations

import numpy as np

from movielens_recs.models.topn import top_n_spark


def recommend_all(ranker, rating_model, ratings, movies, n: int, excluded: list[int] | None = None,
                  promotion: dict | None = None):
    """(user_id, rank, movie_id, title, score, predicted_rating, promoted) for every user of the
    ranking model: its top `n` movies by the ranker's score among those the user has not rated,
    each with the rating model's prediction, kept within the scale of the ratings (an app shows it
    as stars). The dataset's rules: `excluded` movies are never scored, so lists stay `n` long;
    `promotion` (rules.Promotion.as_dict()) inserts promoted movies (see `promote`)."""
    from pyspark.sql import functions as F

    items = ranker.itemFactors.toPandas()
    if excluded:
        items = items[~items["id"].isin(excluded)]
    item_ids = items["id"].to_numpy(dtype=np.int64)
    item_factors = np.vstack(items["features"].to_numpy()).astype(np.float32)
    seen = seen_movies(ratings)
    users = ranker.userFactors.withColumnRenamed("id", "user_id").join(seen, "user_id", "left")
    top = promote(top_n_spark(users, item_ids, item_factors, n), ratings, promotion, n, ["user_id"])
    low, high = ratings.agg(F.min("rating"), F.max("rating")).first()
    return (
        rating_model.predict(top, "predicted_rating")
        .join(movies.select("movie_id", "title"), "movie_id", "left")
        .select("user_id", F.col("rank").cast("short").alias("rank"), "movie_id", "title", "score",
                F.least(F.greatest("predicted_rating", F.lit(low)), F.lit(high)).cast("float").alias("predicted_rating"),
                "promoted")
    )


def promote(top, ratings, promotion: dict | None, n: int, keys: list[str]):
    """Insert the promoted movies into each list (`keys` identify a list: the user, or nothing
    for the cold-start list): the first `max_per_list` of them, in the rules' order, that the
    user has not rated and the list does not already hold, go at rank `position` on (or right
    after the list's end, if it is shorter); the rest move down and the list stays `n` long.
    A promoted row takes the score of the place it was given, so scores stay in rank order, and
    is marked `promoted`: the place came from a rule, not from the model."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    top = top.withColumn("promoted", F.lit(False))
    if not promotion or not promotion.get("movies"):
        return top
    per_user = bool(keys)
    if not per_user:  # one list: a constant key keeps the joins below the same
        top, keys = top.withColumn("_list", F.lit(0)), ["_list"]
    offered = top.sparkSession.createDataFrame(list(enumerate(promotion["movies"])), "preference int, movie_id int")
    lists = top.groupBy(*keys).agg(F.max("rank").alias("length"), F.min("score").alias("last_score"))
    candidates = lists.crossJoin(offered).join(top.select(*keys, "movie_id"), [*keys, "movie_id"], "left_anti")
    if per_user:
        rated = ratings.select(F.col("user_id").alias(keys[0]), "movie_id").distinct()
        candidates = candidates.join(rated, [*keys, "movie_id"], "left_anti")
    chosen = (candidates.withColumn("k", F.row_number().over(Window.partitionBy(*keys).orderBy("preference")) - 1)
              .where(F.col("k") < int(promotion.get("max_per_list", 1)))
              .withColumn("at", F.least(F.lit(int(promotion.get("position", 1))), F.col("length") + 1))
              .withColumn("rank", F.col("at") + F.col("k")))
    inserted = chosen.groupBy(*keys).agg(F.count("*").alias("inserted"), F.first("at").alias("at"))
    # the score of the place: the item that held rank `at` (the list's last, past its end)
    place = top.join(inserted, keys).where(F.col("rank") == F.col("at")).select(*keys, F.col("score").alias("place_score"))
    promoted_rows = (chosen.join(place, keys, "left")
                     .select(*keys, "rank", "movie_id",
                             F.coalesce("place_score", "last_score").cast(top.schema["score"].dataType).alias("score"),
                             F.lit(True).alias("promoted")))
    shifted = (top.join(inserted, keys, "left")
               .withColumn("rank", F.when(F.col("at").isNotNull() & (F.col("rank") >= F.col("at")),
                                          F.col("rank") + F.col("inserted")).otherwise(F.col("rank")))
               .select(*keys, "rank", "movie_id", "score", "promoted"))
    merged = shifted.unionByName(promoted_rows).where(F.col("rank") <= n)
    return merged if per_user else merged.drop("_list")


def seen_movies(ratings):
    """(user_id, seen): the movies each user rated, which their recommendations leave out."""
    from pyspark.sql import functions as F

    return ratings.groupBy("user_id").agg(F.collect_list("movie_id").alias("seen"))


def cold_start(ratings, movies, n: int, min_average: float = 3.5, excluded: list[int] | None = None,
               promotion: dict | None = None):
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if excluded:
        ratings = ratings.where(~F.col("movie_id").isin(excluded))
    stats = ratings.groupBy("movie_id").agg(F.count("*").alias("ratings"), F.avg("rating").alias("average"))
    order = Window.orderBy(F.desc("ratings"), F.desc("average"), F.asc("movie_id"))
    top = (stats.where(F.col("average") >= min_average)
           .withColumn("rank", F.row_number().over(order))
           .where(F.col("rank") <= n)
           .select("rank", "movie_id", F.col("ratings").cast("float").alias("score")))
    return (
        promote(top, ratings, promotion, n, [])
        .join(movies.select("movie_id", "title"), "movie_id", "left")
        .select(F.col("rank").cast("short").alias("rank"), "movie_id", "title", "score", "promoted")
        .orderBy("rank")
    )
