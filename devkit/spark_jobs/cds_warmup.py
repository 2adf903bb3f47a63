"""spark-submit entry point for the local stack: a short run through what the pipeline's jobs
load (Spark SQL, Parquet, ALS, Arrow to pandas), so that its driver and executor JVMs, started
with -XX:ArchiveClassesAtExit, leave class-data-sharing archives behind (stack/spark.py).
Needs nothing but pyspark; the scratch folder it writes to is the only argument.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    scratch = (sys.argv[1:] if argv is None else argv)[0]
    spark = SparkSession.builder.appName("stack-cds-warmup").getOrCreate()
    try:
        ratings = (spark.range(20_000)
                   .select((F.col("id") % 500).cast("int").alias("user_id"),
                           (F.col("id") * 7 % 300).cast("int").alias("movie_id"),
                           (F.rand(1) * 4.5 + 0.5).cast("float").alias("rating"),
                           F.timestamp_seconds(F.lit(964982703) + F.col("id")).alias("rated_at"))
                   .dropDuplicates(["user_id", "movie_id"]))
        ratings.write.mode("overwrite").parquet(f"{scratch}/ratings")
        ratings = spark.read.parquet(f"{scratch}/ratings").cache()
        ratings.groupBy("user_id").agg(F.count("*"), F.avg("rating")).toPandas()
        model = ALS(rank=4, maxIter=2, userCol="user_id", itemCol="movie_id", ratingCol="rating", seed=1).fit(ratings)
        model.recommendForAllUsers(3).toPandas()
        model.transform(ratings).select(F.avg("prediction")).collect()
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
