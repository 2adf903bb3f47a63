"""The fold-in's computation on Spark, for batches of users too large for one process: the same
FoldInModel.recommend (numpy), called by applyInPandas on buckets of users, with the model
broadcast once to the executors. The body of spark_jobs/fold_in.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pyarrow as pa

from movielens_recs.contracts import JobContract
from movielens_recs.foldin.fold import FoldInModel
from movielens_recs.models.store import ModelLayout

# users per applyInPandas group: each is one call of recommend, so one batch of solves
USERS_PER_GROUP = 2_000

OUTPUT_SCHEMA = ("user_id int, rank short, movie_id int, title string, score float, predicted_rating float, "
                 "promoted boolean")


def fold_in(spark, model: FoldInModel, model_uri: str, events_uri: str, top_n: int):
    """(user_id, rank, movie_id, title, score, predicted_rating, promoted) for every user in the
    events at `events_uri` (user_id, movie_id, rating; one row per user and movie), from the
    ratings the version knew plus those events, an event replacing a known rating."""
    from pyspark.sql import functions as F

    layout = ModelLayout(model_uri)
    new = spark.read.parquet(events_uri).select("user_id", "movie_id", F.col("rating").cast("float"))
    users = new.select("user_id").distinct()
    known = (spark.read.parquet(layout.train).unionByName(spark.read.parquet(layout.test))
             .select("user_id", "movie_id", F.col("rating").cast("float")).join(users, "user_id")
             .join(new.select("user_id", "movie_id"), ["user_id", "movie_id"], "left_anti"))
    groups = max(1, users.count() // USERS_PER_GROUP)
    shared = spark.sparkContext.broadcast((model, model.gram))
    schema = pa.schema([("user_id", pa.int32()), ("movie_id", pa.int32()), ("rating", pa.float32())])

    def recommend(frame):
        folded, gram = shared.value
        ratings = pa.Table.from_pandas(frame[["user_id", "movie_id", "rating"]], preserve_index=False).cast(schema)
        return folded.recommend(ratings, top_n, gram).to_pandas()

    return (known.unionByName(new).groupBy(F.pmod(F.hash("user_id"), F.lit(groups)).alias("_group"))
            .applyInPandas(recommend, OUTPUT_SCHEMA))


@dataclass(frozen=True)
class FoldInJob(JobContract):
    """The argument contract of spark_jobs/fold_in.py, written once: the task builds the argv with
    `to_argv`, the job reads it back with `from_argv` (contracts.JobContract)."""

    JOB: ClassVar[str] = "fold_in"
    model_uri: str
    model_version: str
    params: dict
    movies_uri: str  # the version's snapshot catalog (titles)
    rating_values: tuple[float, ...]
    events_uri: str  # Parquet: user_id, movie_id, rating
    output_uri: str
    top_n: int
    excluded: tuple[int, ...] = ()
    promotion: dict | None = None

    def model(self) -> FoldInModel:
        import pyarrow.parquet as pq

        from movielens_recs.lake.filesystem import resolve

        fs, path = resolve(self.movies_uri)
        movies = pq.read_table(path, filesystem=fs, columns=["movie_id", "title"])
        return FoldInModel.load(self.model_uri, self.model_version, self.params, movies, self.rating_values,
                                self.excluded, self.promotion)
