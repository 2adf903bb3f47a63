"""spark-submit entry point: validate a snapshot with the Great Expectations suites.

Runs where the data is (the Spark cluster), so validation scales with it. Writes its report
(JSON) to --report-uri whether it passes or not, prints each failed expectation and how many
rows broke it, and exits 3 when any expectation fails. Imports nothing from Airflow; ship the
`movielens_recs` package with --py-files.

    spark-submit --py-files movielens_recs.zip spark_jobs/validate_snapshot.py \\
        --dataset ml-latest-small --snapshot-id <md5> --data-dir data-... \\
        --ratings file:///.../ratings --movies file:///.../movies \\
        --expectations-dir expectations --report-uri /.../report.json
"""

from __future__ import annotations

import logging
import sys

def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("great_expectations", "py4j"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from movielens_recs.contracts import ValidateJob
    from movielens_recs.errors import EXIT_BAD_INPUT
    from movielens_recs.jobs import start_session
    from movielens_recs.validation.snapshot_check import validate_snapshot

    args = ValidateJob.from_argv(sys.argv[1:] if argv is None else argv)
    spark = start_session(f"validate-{args.dataset}-{args.snapshot_id[:8]}")
    try:
        report, _ = validate_snapshot(
            spark,
            dataset=args.dataset,
            snapshot_id=args.snapshot_id,
            data_dir=args.data_dir,
            ratings_uri=args.ratings,
            movies_uri=args.movies,
            expectations_dir=args.expectations_dir,
            report_uri=args.report_uri,
            data_docs_dir=args.data_docs_dir,
            fingerprint=args.suites_fingerprint,
        )
    finally:
        spark.stop()
    print(report.message(f"snapshot {args.dataset}/{args.snapshot_id}"), flush=True)
    return 0 if report.success else EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
