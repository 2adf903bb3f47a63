"""The recommend job's output, checked with the suites in `expectations/` before anything is published.

Checks that span tables (already rated, known movie, known user, rank order, users missing from
the output) are computed here as Spark joins and window functions into flag and count columns;
the suites then state what those columns must hold. Each check scales with the cluster, and GX
reports the offending rows' counts and examples as it does for any column. The suites run on
pandas when the flagged frames are small enough for the driver (PANDAS_MAX_ROWS).
"""

from __future__ import annotations

from pathlib import Path

from movielens_recs.validation.runner import PANDAS_MAX_ROWS, ValidationReport, choose_engine, validate_frames
from movielens_recs.validation.suites import RECOMMENDATION_SUITE_FILES, load_suites


def _finite(column: str):
    from pyspark.sql import functions as F

    return F.col(column).isNotNull() & ~F.isnan(column) & (F.abs(F.col(column)) < F.lit(float("inf")))


def build_recommendation_frames(recs, cold, model_users, model_items, ratings, movies, top_n: int,
                                excluded: list[int] | None = None) -> dict:
    """`model_users`/`model_items`: one `id` column each (the model's userFactors/itemFactors ids).
    `excluded`: movie ids the dataset's rules forbid (flag `movie_excluded`)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    users = model_users.select(F.col("id").alias("user_id")).distinct()
    excluded = list(excluded or [])
    is_excluded = F.col("movie_id").isin(excluded) if excluded else F.lit(False)
    items = model_items.select(F.col("id").alias("movie_id")).distinct().where(~is_excluded)
    catalog = movies.select("movie_id", F.lit(True).alias("movie_in_catalog")).distinct()
    rated = ratings.select("user_id", "movie_id").distinct().withColumn("already_rated", F.lit(True))
    previous = F.lag("score").over(Window.partitionBy("user_id").orderBy("rank"))

    flagged = (
        recs.select("user_id", "rank", "movie_id", "title", "score", "predicted_rating", "promoted")
        .withColumn("score_is_finite", _finite("score"))
        .withColumn("predicted_rating_is_finite", _finite("predicted_rating"))
        .withColumn("score_in_rank_order", previous.isNull() | (previous >= F.col("score")))
        .withColumn("movie_excluded", is_excluded)
        .join(rated, ["user_id", "movie_id"], "left")
        .join(catalog, "movie_id", "left")
        .join(users.withColumn("user_in_model", F.lit(True)), "user_id", "left")
        .fillna(False, subset=["already_rated", "movie_in_catalog", "user_in_model"])
    )

    n_items = items.count()
    seen_known = ratings.select("user_id", "movie_id").distinct().join(items, "movie_id").groupBy("user_id").count()
    per_user = recs.groupBy("user_id").agg(
        F.count("*").alias("rows"), F.min("rank").alias("min_rank"), F.max("rank").alias("max_rank"),
        F.countDistinct("rank").alias("distinct_ranks"),
    )
    user_rows = (
        users.join(per_user, "user_id", "left")
        .join(seen_known.withColumnRenamed("count", "seen"), "user_id", "left")
        .select(
            "user_id",
            F.coalesce("rows", F.lit(0)).cast("long").alias("rows"),
            F.least(F.lit(top_n), F.lit(n_items) - F.coalesce("seen", F.lit(0))).cast("long").alias("expected_rows"),
            F.col("min_rank").cast("long").alias("min_rank"),
            F.col("max_rank").cast("long").alias("max_rank"),
            F.coalesce("distinct_ranks", F.lit(0)).cast("long").alias("distinct_ranks"),
        )
    )

    cold_flagged = (
        cold.select("rank", "movie_id", "title", "score", "promoted")
        .withColumn("movie_excluded", is_excluded)
        .join(catalog, "movie_id", "left")
        .fillna(False, subset=["movie_in_catalog"])
    )
    return {"recommendations": flagged, "recommendation_users": user_rows, "cold_start": cold_flagged}


# Up to this many rows in all (ml-25m's 162k users x 10 is 1.6 million), the flagged frames are
def validate_recommendations(frames: dict, expectations_dir: Path, top_n: int,
                             data_docs_dir: Path | None = None,
                             pandas_max_rows: int = PANDAS_MAX_ROWS) -> ValidationReport:
    cached = {name: frame.cache() for name, frame in frames.items()}
    try:
        engine, checked = choose_engine(cached, pandas_max_rows)
        return validate_frames(
            checked,
            load_suites(Path(expectations_dir), RECOMMENDATION_SUITE_FILES),
            {"top_n": top_n},
            data_docs_dir=data_docs_dir,
            engine=engine,
        )
    finally:
        for frame in cached.values():
            frame.unpersist()
