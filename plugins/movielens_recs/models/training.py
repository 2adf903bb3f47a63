"""Split and fit, on Spark. Used by spark_jobs/train_als.py."""

from __future__ import annotations

from datetime import datetime

from movielens_recs.models.params import AlsParams


def as_of(ratings, cutoff: datetime | None):
    """Only ratings made before `cutoff`: each run trains on what was known at its time."""
    from pyspark.sql import functions as F

    if cutoff is None:
        return ratings
    return ratings.where(F.col("rated_at") < F.lit(cutoff))


def split(ratings, params: AlsParams):
    """(train, test). Random: seeded, so the same snapshot always splits the same way. Time:
    the most recent `test_fraction` of ratings are the test set, as in production, where the
    model predicts ratings made after it was trained."""
    from pyspark.sql import functions as F

    if params.split == "random":
        # a fixed order before sampling makes the split independent of file layout
        ordered = ratings.sortWithinPartitions("user_id", "movie_id")
        train, test = ordered.randomSplit([1 - params.test_fraction, params.test_fraction], seed=params.seed)
        return train, test
    threshold = ratings.select(
        F.percentile_approx(F.unix_micros("rated_at"), 1 - params.test_fraction, 10000).alias("t")
    ).first()["t"]
    boundary = F.timestamp_micros(F.lit(threshold))
    return ratings.where(F.col("rated_at") < boundary), ratings.where(F.col("rated_at") >= boundary)


def als_estimator(params: AlsParams):
    from pyspark.ml.recommendation import ALS

    return ALS(
        rank=params.rank,
        maxIter=params.max_iter,
        regParam=params.reg_param,
        nonnegative=params.nonnegative,
        numUserBlocks=params.blocks,
        numItemBlocks=params.blocks,
        seed=params.seed,
        userCol="user_id",
        itemCol="movie_id",
        ratingCol="rating",
        coldStartStrategy="drop",
        # with a checkpoint dir set, lineage is cut every 10 iterations (no stack overflow)
        checkpointInterval=10,
    )
