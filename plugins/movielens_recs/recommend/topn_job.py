"""The body of spark_jobs/recommend.py, in the package so that tests can run it on one session.

Cold-start rule (users the model does not know): the N movies with the most ratings in the
snapshot among those whose average rating is at least `cold_start_min_average` (default 3.5),
ties broken by the higher average, then the lower movie id. "Most rated" alone would favour
well-known but mediocre films; the floor on the average keeps the list to ones people liked.
"""

from __future__ import annotations

import numpy as np

from movielens_recs.models.topn import top_n_spark


def recommend_all(ranker, rating_model, ratings, movies, n: int):
    """(user_id, rank, movie_id, title, score, predicted_rating) for every user of the ranking
    model: its top `n` movies by the ranker's score among those the user has not rated, each with
    the rating model's prediction, kept within the scale of the ratings (an app shows it as stars)."""
    from pyspark.sql import functions as F

    items = ranker.itemFactors.toPandas()
    item_ids = items["id"].to_numpy(dtype=np.int64)
    item_factors = np.vstack(items["features"].to_numpy()).astype(np.float32)
    seen = seen_movies(ratings)
    users = ranker.userFactors.withColumnRenamed("id", "user_id").join(seen, "user_id", "left")
    top = top_n_spark(users, item_ids, item_factors, n)
    low, high = ratings.agg(F.min("rating"), F.max("rating")).first()
    return (
        rating_model.predict(top, "predicted_rating")
        .join(movies.select("movie_id", "title"), "movie_id", "left")
        .select("user_id", F.col("rank").cast("short").alias("rank"), "movie_id", "title", "score",
                F.least(F.greatest("predicted_rating", F.lit(low)), F.lit(high)).cast("float").alias("predicted_rating"))
    )


def seen_movies(ratings):
    """(user_id, seen): the movies each user rated, which their recommendations leave out."""
    from pyspark.sql import functions as F

    return ratings.groupBy("user_id").agg(F.collect_list("movie_id").alias("seen"))


def cold_start(ratings, movies, n: int, min_average: float = 3.5):
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    stats = ratings.groupBy("movie_id").agg(F.count("*").alias("ratings"), F.avg("rating").alias("average"))
    order = Window.orderBy(F.desc("ratings"), F.desc("average"), F.asc("movie_id"))
    return (
        stats.where(F.col("average") >= min_average)
        .withColumn("rank", F.row_number().over(order).cast("short"))
        .where(F.col("rank") <= n)
        .join(movies.select("movie_id", "title"), "movie_id", "left")
        .select("rank", "movie_id", "title", F.col("ratings").cast("float").alias("score"))
        .orderBy("rank")
    )
