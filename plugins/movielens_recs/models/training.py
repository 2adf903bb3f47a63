"""Split, fit, save and load the two models of a version, on Spark. Used by the Spark jobs.

The rating model predicts ratings: biases (models/bias.py) plus explicit ALS fitted to what the
biases leave over, so a user or movie ALS never saw still gets mu + b_u + b_i. Explicit ALS alone
does no better than the biases on ml-latest-small (0.876 against 0.871); on the residuals it
reaches 0.853 (README, "Goals, measured").

The ranking model orders the top N: implicit-feedback ALS (Hu, Koren and Volinsky), where each
rating is a preference with confidence 1 + alpha x |preference|. Ranking the catalog by predicted
rating puts obscure movies with a few enthusiastic ratings first (NDCG@10 0.004 against
popularity's 0.19 on ml-latest-small); the implicit model learns what a user is likely to watch
next, and reaches 0.34.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from movielens_recs.lake.filesystem import read_json, write_json
from movielens_recs.models.bias import BiasTerms, fit_spark, with_baseline
from movielens_recs.models.params import AlsParams
from movielens_recs.models.store import ModelLayout

# Buckets of the hash split: a rating is held out when its bucket is below fraction x BUCKETS.
BUCKETS = 1_000_000


def as_of(ratings, cutoff: datetime | None):
    """Only ratings made before `cutoff`: each run trains on what was known at its time."""
    from pyspark.sql import functions as F

    if cutoff is None:
        return ratings
    return ratings.where(F.col("rated_at") < F.lit(cutoff))


def hash_bucket(salt: str):
    """A rating's bucket in [0, BUCKETS): xxhash64 of (user, movie, salt), the same for the same
    rating in every run, snapshot and cutoff, whatever else the data holds (Spark's xxhash64 is
    the one its bucketed tables rely on, so it does not change between releases)."""
    from pyspark.sql import functions as F

    return F.pmod(F.xxhash64(F.col("user_id").cast("int"), F.col("movie_id").cast("int"), F.lit(salt)),
                  F.lit(BUCKETS))


def split(ratings, params: AlsParams):
    """(train, test). Hash: a rating is held out by its own hash, never by what else is in the
    set, so a champion and a candidate trained on different snapshots or cutoffs agree on every
    rating they share. Time: the most recent `test_fraction` of ratings are held out, as in
    production, where the model predicts ratings made after it was trained."""
    from pyspark.sql import functions as F

    if params.split == "hash":
        held_out = hash_bucket(params.split_salt) < F.lit(int(params.test_fraction * BUCKETS))
        return ratings.where(~held_out), ratings.where(held_out)
    threshold = ratings.select(
        F.percentile_approx(F.unix_micros("rated_at"), 1 - params.test_fraction, 10000).alias("t")
    ).first()["t"]
    boundary = F.timestamp_micros(F.lit(threshold))
    return ratings.where(F.col("rated_at") < boundary), ratings.where(F.col("rated_at") >= boundary)


def validation_split(train, params: AlsParams, fraction: float = 0.2):
    """A validation fold carved out of the training ratings, for tuning: the test fold is never
    touched. Its own salt, so it is independent of the test fold's buckets."""
    return split(train, params.replace(split="hash", split_salt=params.split_salt + ":validation",
                                       test_fraction=fraction))


def _als(params: AlsParams, rank: int, max_iter: int, reg_param: float, **kwargs):
    from pyspark.ml.recommendation import ALS

    return ALS(rank=rank, maxIter=max_iter, regParam=reg_param, numUserBlocks=params.blocks,
               numItemBlocks=params.blocks, seed=params.seed, userCol="user_id", itemCol="movie_id",
               # with a checkpoint dir set, lineage is cut every 10 iterations (no stack overflow)
               checkpointInterval=10, **kwargs)


@dataclass
class RatingModel:
    """Biases plus explicit ALS on the residuals. `terms` is None for a model written before the
    biases existed: its predictions are ALS's alone."""

    als: object
    terms: BiasTerms | None = None
    user_bias: object = None
    item_bias: object = None

    def predict(self, pairs, column: str = "prediction"):
        """`pairs` (user_id, movie_id, ...) plus `column`. Pairs ALS cannot score keep the biases'
        prediction; a model without biases drops them (as coldStartStrategy="drop")."""
        from pyspark.sql import functions as F

        if self.terms is None:
            self.als.setColdStartStrategy("drop")
            return self.als.setPredictionCol(column).transform(pairs)
        self.als.setColdStartStrategy("nan")
        scored = self.als.setPredictionCol("_factor").transform(
            with_baseline(pairs, self.terms, self.user_bias, self.item_bias, "_baseline"))
        return (scored.withColumn(column, F.col("_baseline") + F.coalesce(F.nanvl("_factor", F.lit(None)), F.lit(0.0)))
                .drop("_baseline", "_factor"))

    def save(self, layout: ModelLayout) -> None:
        self.als.write().overwrite().save(layout.rating_als)
        self.user_bias.write.mode("overwrite").parquet(layout.user_bias)
        self.item_bias.write.mode("overwrite").parquet(layout.item_bias)
        write_json(layout.bias_terms, {"global_mean": self.terms.global_mean, "damping": self.terms.damping})


def fit_rating_model(train, params: AlsParams) -> RatingModel:
    from pyspark.sql import functions as F

    terms, users, items = fit_spark(train, params.bias_damping)
    users, items = users.cache(), items.cache()
    residuals = with_baseline(train, terms, users, items).withColumn("residual", F.col("rating") - F.col("baseline"))
    als = _als(params, params.rank, params.max_iter, params.reg_param, nonnegative=params.nonnegative,
               ratingCol="residual").fit(residuals)
    return RatingModel(als, terms, users, items)


def preferences(train, params: AlsParams):
    """(user_id, movie_id, preference) for implicit ALS; see PREFERENCES in models/params.py."""
    from pyspark.sql import functions as F

    value = F.lit(1.0) if params.ranking_preference == "rated" else F.col("rating") - F.lit(2.5)
    return train.select("user_id", "movie_id", value.cast("float").alias("preference"))


def fit_ranking_model(train, params: AlsParams):
    return _als(params, params.ranking_rank, params.ranking_max_iter, params.ranking_reg_param,
                implicitPrefs=True, alpha=params.ranking_alpha, ratingCol="preference").fit(preferences(train, params))


def load_rating_model(spark, layout: ModelLayout) -> RatingModel:
    from pyspark.ml.recommendation import ALSModel

    als = ALSModel.load(layout.rating_als)
    if not layout.has_bias():
        return RatingModel(als)
    terms = BiasTerms(**read_json(layout.bias_terms))
    return RatingModel(als, terms, spark.read.parquet(layout.user_bias), spark.read.parquet(layout.item_bias))


def load_ranking_model(layout: ModelLayout):
    """The model whose scores order the top N; a version without one ranks by predicted rating."""
    from pyspark.ml.recommendation import ALSModel

    return ALSModel.load(layout.ranking_als if layout.has_ranking_model() else layout.rating_als)
