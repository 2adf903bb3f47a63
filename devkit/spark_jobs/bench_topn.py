"""spark-submit entry point for the benchmark: top-N throughput of one trained model, the
project's recommend job against recommendForAllUsers and a numpy machine-limit estimate.
Writes the figures as JSON to --output. Imports nothing from Airflow.
"""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-uri", required=True)
    p.add_argument("--ratings", required=True)
    p.add_argument("--movies", required=True)
    p.add_argument("--top-n", type=int, default=10)
    p.add_argument("--repeats", type=int, required=True)
    p.add_argument("--output", required=True, help="local path of the JSON figures")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)

    from mlrecs_devkit.benchmark.topn_bench import measure
    from movielens_recs.jobs import spread_over_cores, start_session
    from mlrecs_devkit.benchmark import write_figures
    from movielens_recs.models.run import training_rows
    from movielens_recs.models.store import ModelLayout
    from movielens_recs.models.training import load_ranking_model, load_rating_model

    spark = start_session("bench-topn")
    try:
        layout = ModelLayout(args.model_uri)
        model, rating_model = load_ranking_model(layout), load_rating_model(spark, layout)
        # every variant under the recommend job's settings, the cached ratings split as the job
        # reads them, so that none is measured with fewer tasks than the job runs
        with spread_over_cores(spark, training_rows(layout)):
            ratings = spark.read.parquet(args.ratings).cache()
            movies = spark.read.parquet(args.movies).cache()
            ratings.count(), movies.count()
            figures = measure(model, rating_model, ratings, movies, args.top_n, args.repeats)
    finally:
        spark.stop()
    write_figures(args.output, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
