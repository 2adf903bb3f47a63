"""spark-submit entry point for the benchmark: does folding in new ratings close the gap between
an unchanged champion and a full retrain? (benchmark/foldin_bench.py). Writes the figures as
JSON to --output. Imports nothing from Airflow.
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ratings", required=True, help="Spark URI of the snapshot's ratings")
    p.add_argument("--params", default="{}", help="JSON of the models' params (AlsParams)")
    p.add_argument("--work-uri", required=True, help="where the champion is saved, as the fold-in reads it")
    p.add_argument("--checkpoint-dir", default="")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--output", required=True, help="local path of the JSON figures")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)

    from mlrecs_devkit.benchmark.foldin_bench import quality
    from movielens_recs.jobs import start_session
    from mlrecs_devkit.benchmark import write_figures
    from movielens_recs.models.params import AlsParams

    spark = start_session("bench-fold-in", args.checkpoint_dir)
    try:
        figures = quality(spark, spark.read.parquet(args.ratings), AlsParams.from_dict(json.loads(args.params)),
                          args.work_uri, seed=args.seed)
    finally:
        spark.stop()
    write_figures(args.output, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
