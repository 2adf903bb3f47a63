"""spark-submit entry point: fold rating events into a model version for many users at once
(foldin/on_spark.py), writing their new lists as Parquet to --output-uri and, last, a marker
`_FOLDED.json` with the row count; the fold-in task publishes them. Imports nothing from Airflow.
"""

from __future__ import annotations

import logging
import sys


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from movielens_recs.foldin.on_spark import FoldInJob, fold_in
    from movielens_recs.jobs import start_session
    from movielens_recs.lake.filesystem import join
    from movielens_recs.lake.filesystem import write_json

    job = FoldInJob.from_argv(sys.argv[1:] if argv is None else argv)
    spark = start_session(f"fold-in-{job.model_version}")
    try:
        fold_in(spark, job.model(), job.model_uri, job.events_uri, job.top_n).write.mode("overwrite").parquet(
            job.output_uri)
        rows = spark.read.parquet(job.output_uri).count()
    finally:
        spark.stop()
    write_json(join(job.output_uri, "_FOLDED.json"), {"model_version": job.model_version, "rows": rows})
    print(f"folded lists of {job.model_version}: {rows:,} rows -> {job.output_uri}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
