"""spark-submit entry point: split a validated snapshot and train ALS on it.

Writes into --model-uri: the ALSModel (als/), the exact split (split/train, split/test) and
metadata.json. Imports nothing from Airflow; ship `movielens_recs` with --py-files.

    spark-submit --py-files movielens_recs.zip spark_jobs/train_als.py \\
        --ratings file:///.../ratings --dataset ml-latest-small --snapshot-id <md5> \\
        --model-id m1 --model-uri file:///.../models/ml-latest-small/m1 --rank 10 --max-iter 10
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import datetime, timezone


def parse_args(argv):
    p = argparse.ArgumentParser(description="Train ALS on a MovieLens snapshot")
    p.add_argument("--ratings", required=True, help="Spark URI of the snapshot's ratings")
    p.add_argument("--dataset", required=True)
    p.add_argument("--snapshot-id", required=True)
    p.add_argument("--model-id", required=True)
    p.add_argument("--model-uri", required=True, help="Spark URI of this model's folder")
    p.add_argument("--cutoff", default="", help="train only on ratings before this ISO time (UTC)")
    p.add_argument("--checkpoint-dir", default="")
    p.add_argument("--rank", type=int, default=10)
    p.add_argument("--max-iter", type=int, default=10)
    p.add_argument("--reg-param", type=float, default=0.1)
    p.add_argument("--nonnegative", default="false")
    p.add_argument("--blocks", type=int, default=4)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--split", choices=["random", "time"], default="random")
    p.add_argument("--test-fraction", type=float, default=0.2)
    return p.parse_args(argv)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("train_als")
    args = parse_args(sys.argv[1:] if argv is None else argv)

    import pyspark
    from pyspark.sql import SparkSession

    from movielens_recs import __version__
    from movielens_recs.models.params import AlsParams
    from movielens_recs.models.store import write_json
    from movielens_recs.models.training import als_estimator, as_of, split

    params = AlsParams.from_dict(vars(args))
    cutoff = datetime.fromisoformat(args.cutoff).astimezone(timezone.utc) if args.cutoff else None
    spark = SparkSession.builder.appName(f"train-{args.model_id}").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    if args.checkpoint_dir:
        spark.sparkContext.setCheckpointDir(args.checkpoint_dir)
    try:
        ratings = as_of(spark.read.parquet(args.ratings), cutoff)
        train, test = split(ratings, params)
        train = train.cache()
        test = test.cache()
        counts = {"train": train.count(), "test": test.count()}
        counts["ratings"] = counts["train"] + counts["test"]
        if counts["train"] == 0 or counts["test"] == 0:
            log.error("nothing to train or test on: %s (cutoff %s)", counts, cutoff)
            return 1
        started = time.perf_counter()
        model = als_estimator(params).fit(train)
        fit_seconds = time.perf_counter() - started
        log.info("fitted ALS %s on %d ratings in %.1f s", params, counts["train"], fit_seconds)

        model.write().overwrite().save(f"{args.model_uri}/als")
        train.write.mode("overwrite").parquet(f"{args.model_uri}/split/train")
        test.write.mode("overwrite").parquet(f"{args.model_uri}/split/test")
        metadata = {
            "model_id": args.model_id,
            "dataset": args.dataset,
            "snapshot_id": args.snapshot_id,
            "ratings_uri": args.ratings,
            "cutoff": cutoff.isoformat() if cutoff else None,
            "params": params.as_dict(),
            "split": {"kind": params.split, "test_fraction": params.test_fraction, "seed": params.seed},
            "rows": counts,
            "users": model.userFactors.count(),
            "items": model.itemFactors.count(),
            "fit_seconds": round(fit_seconds, 3),
            "code_version": __version__,
            "spark_version": pyspark.__version__,
            "trained_at": datetime.now(timezone.utc).isoformat(),
        }
        write_json(f"{args.model_uri}/metadata.json", metadata)
        print(f"trained {args.model_id}: {counts['train']:,} training / {counts['test']:,} held-out ratings, "
              f"fit {fit_seconds:.1f} s -> {args.model_uri}", flush=True)
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
