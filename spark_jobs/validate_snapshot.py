"""spark-submit entry point: validate a snapshot with the Great Expectations suites.

Runs where the data is (the Spark cluster), so validation scales with it. Writes its report
(JSON) to --report-uri whether it passes or not, and exits 3 when any expectation fails, after
printing each failed expectation and how many rows broke it. Imports nothing from Airflow;
ship the `movielens_recs` package with --py-files.

    spark-submit --py-files movielens_recs.zip spark_jobs/validate_snapshot.py \
        --dataset ml-latest-small --snapshot-id <md5> --data-dir data-... \
        --ratings file:///.../ratings --movies file:///.../movies \
        --expectations-dir expectations --report-uri /.../report.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import datetime, timezone
from pathlib import Path

EXIT_VALIDATION_FAILED = 3


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--snapshot-id", required=True)
    parser.add_argument("--data-dir", required=True, help="the snapshot attempt being validated")
    parser.add_argument("--ratings", required=True, help="Spark URI of the ratings Parquet folder")
    parser.add_argument("--movies", required=True, help="Spark URI of the movies Parquet folder")
    parser.add_argument("--expectations-dir", required=True)
    parser.add_argument("--suites-fingerprint", default=None)
    parser.add_argument("--report-uri", required=True)
    parser.add_argument("--data-docs-dir", default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("great_expectations", "py4j"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = parse_args(sys.argv[1:] if argv is None else argv)

    from pyspark.sql import SparkSession

    from movielens_recs.datasets.catalog import dataset_spec
    from movielens_recs.lake.filesystem import resolve
    from movielens_recs.validation.frames import build_frames
    from movielens_recs.validation.runner import validate_frames
    from movielens_recs.validation.suites import load_suites, suites_fingerprint

    spark = SparkSession.builder.appName(f"validate-{args.dataset}-{args.snapshot_id[:8]}").getOrCreate()
    try:
        ratings = spark.read.parquet(args.ratings)
        movies = spark.read.parquet(args.movies)
        expectations_dir = Path(args.expectations_dir)
        report = validate_frames(
            build_frames(ratings, movies),
            load_suites(expectations_dir),
            dataset_spec(args.dataset).expectation_parameters(),
            data_docs_dir=Path(args.data_docs_dir) if args.data_docs_dir else None,
            engine="spark",
        )
    finally:
        spark.stop()

    payload = {
        **report.to_dict(),
        "dataset": args.dataset,
        "snapshot_id": args.snapshot_id,
        "data_dir": args.data_dir,
        "suites_fingerprint": args.suites_fingerprint or suites_fingerprint(expectations_dir),
        "validated_at": datetime.now(timezone.utc).isoformat(),
    }
    fs, path = resolve(args.report_uri)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as fh:
        fh.write(json.dumps(payload, indent=2).encode())

    subject = f"snapshot {args.dataset}/{args.snapshot_id}"
    print(report.message(subject), file=sys.stderr if not report.success else sys.stdout, flush=True)
    return 0 if report.success else EXIT_VALIDATION_FAILED


if __name__ == "__main__":
    sys.exit(main())
