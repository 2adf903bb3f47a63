"""spark-submit entry point: every user's top N unseen movies from a trained model, validated.

Scores users in blocks against the broadcast item factors (no users x items cross join) and
keeps only each user's best N; writes Parquet under <model-uri>/recommendations/ with the
cold-start list beside it, validates both with the Great Expectations suites in
--expectations-dir, and only when they pass writes the marker that lets them be published.
Exits 3 when the output fails its suites. Imports nothing from Airflow; ship `movielens_recs`
with --py-files.
"""

from __future__ import annotations

import argparse
import logging
import sys


def parse_args(argv):
    p = argparse.ArgumentParser(description="Top-N recommendations for every user of a model")
    p.add_argument("--model-id", required=True)
    p.add_argument("--model-uri", required=True)
    p.add_argument("--ratings", required=True, help="Spark URI of the snapshot's ratings (what users already rated)")
    p.add_argument("--movies", required=True, help="Spark URI of the snapshot's movies (titles)")
    p.add_argument("--top-n", type=int, default=10)
    p.add_argument("--cold-start-min-average", type=float, default=3.5)
    p.add_argument("--expectations-dir", required=True)
    p.add_argument("--data-docs-dir", default=None)
    p.add_argument("--cutoff", default="", help="the model's cutoff (ISO time): only ratings before it count as seen")
    p.add_argument("--output-uri", default="", help="default: <model-uri>/recommendations")
    p.add_argument("--exclude-movies", default="[]",
                   help="JSON list of movie ids never recommended (the dataset's rules, checked by prepare_model)")
    p.add_argument("--promote", default="{}",
                   help='JSON {"movies": [...], "position": p, "max_per_list": c}: movies inserted into every list')
    return p.parse_args(argv)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("great_expectations", "py4j"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = parse_args(sys.argv[1:] if argv is None else argv)

    import json

    from movielens_recs.errors import EXIT_BAD_INPUT
    from movielens_recs.jobs import parse_cutoff, start_session
    from movielens_recs.recommend.output import output_uri
    from movielens_recs.recommend.run import run_recommend

    output = args.output_uri or output_uri(args.model_uri)
    cutoff = parse_cutoff(args.cutoff)
    spark = start_session(f"recommend-{args.model_id}")
    try:
        report, summary = run_recommend(
            spark, model_id=args.model_id, model_uri=args.model_uri, ratings_uri=args.ratings,
            movies_uri=args.movies, top_n=args.top_n, output=output, expectations_dir=args.expectations_dir,
            cold_start_min_average=args.cold_start_min_average, data_docs_dir=args.data_docs_dir, cutoff=cutoff,
            excluded=json.loads(args.exclude_movies or "[]"), promotion=json.loads(args.promote or "{}"),
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
