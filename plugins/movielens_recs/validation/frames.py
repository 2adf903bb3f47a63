"""The Spark data frames the suites run on.

Referential integrity has no built-in expectation across two tables, so it is checked on a
derived frame: ratings left-anti-joined to the catalog leaves exactly the rated movie ids the
catalog lacks. Spark does that as a join, on the cluster, however large the catalog is.
"""

from __future__ import annotations


def build_frames(ratings, movies) -> dict:
    from pyspark.sql import functions as F

    catalog = movies.select(F.col("movie_id").alias("_catalog_id")).distinct()
    unknown = (
        ratings.select("movie_id")
        .join(catalog, ratings["movie_id"] == catalog["_catalog_id"], "left_anti")
        .select(F.col("movie_id").alias("unknown_movie_id"))
    )
    # The suite expects this column to be all null: every row in `unknown` breaks it.
    return {"ratings": ratings, "movies": movies, "rated_movies_in_catalog": unknown}
