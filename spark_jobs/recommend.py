"""spark-submit entry point: every user's top N unseen movies from a trained model.

Scores users in blocks against the broadcast item factors (no users x items cross join) and
keeps only each user's best N; writes <output>/recommendations and <output>/cold_start as
Parquet. Imports nothing from Airflow; ship `movielens_recs` with --py-files.
"""

from __future__ import annotations

import argparse
import logging
import sys


def parse_args(argv):
    p = argparse.ArgumentParser(description="Top-N recommendations for every user of a model")
    p.add_argument("--model-uri", required=True)
    p.add_argument("--ratings", required=True, help="Spark URI of the snapshot's ratings (what users already rated)")
    p.add_argument("--movies", required=True, help="Spark URI of the snapshot's movies (titles)")
    p.add_argument("--n", type=int, default=10)
    p.add_argument("--cold-start-min-average", type=float, default=3.5)
    p.add_argument("--output-uri", default="", help="default: <model-uri>/recommendations")
    return p.parse_args(argv)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(sys.argv[1:] if argv is None else argv)

    from pyspark.ml.recommendation import ALSModel
    from pyspark.sql import SparkSession

    from movielens_recs.recommend.topn_job import cold_start, recommend_all

    output = args.output_uri or f"{args.model_uri}/recommendations"
    spark = SparkSession.builder.appName("recommend").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    try:
        model = ALSModel.load(f"{args.model_uri}/als")
        ratings = spark.read.parquet(args.ratings)
        movies = spark.read.parquet(args.movies)
        recommend_all(model, ratings, movies, args.n).write.mode("overwrite").parquet(f"{output}/recommendations")
        cold_start(ratings, movies, args.n, args.cold_start_min_average).write.mode("overwrite").parquet(f"{output}/cold_start")
    finally:
        spark.stop()
    print(f"recommendations written to {output}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
