"""spark-submit entry point: every user's top N unseen movies from a trained model, validated.

Scores users in blocks against the broadcast item factors (no users x items cross join) and
keeps only each user's best N; writes Parquet under <model-uri>/recommendations/ with the
cold-start list beside it, validates both with the Great Expectations suites in
--expectations-dir, and only when they pass writes the marker that lets them be published.
Exits 3 when the output fails its suites. Imports nothing from Airflow; ship `movielens_recs`
with --py-files.
"""

from __future__ import annotations

import logging
import sys


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("great_expectations", "py4j"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from movielens_recs.contracts import RecommendJob
    from movielens_recs.errors import EXIT_BAD_INPUT
    from movielens_recs.jobs import parse_cutoff, start_session
    from movielens_recs.recommend.output import output_uri
    from movielens_recs.recommend.run import run_recommend

    args = RecommendJob.from_argv(sys.argv[1:] if argv is None else argv)
    output = args.output_uri or output_uri(args.model_uri)
    cutoff = parse_cutoff(args.cutoff)
    spark = start_session(f"recommend-{args.model_id}")
    try:
        report, summary = run_recommend(
            spark, model_id=args.model_id, model_uri=args.model_uri, ratings_uri=args.ratings,
            movies_uri=args.movies, top_n=args.top_n, output=output, expectations_dir=args.expectations_dir,
            cold_start_min_average=args.cold_start_min_average, data_docs_dir=args.data_docs_dir, cutoff=cutoff,
            excluded=list(args.exclude_movies), promotion=args.promote or {},
        )
    finally:
        spark.stop()
    print(report.message(f"recommendations of {args.model_id}"), flush=True)
    if summary is None:
        return EXIT_BAD_INPUT
    print(f"{summary['rows']:,} recommendations for {summary['users']:,} users "
          f"({summary['users_per_second']:,.0f} users/s) written to {output}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
