"""spark-submit entry point: split a validated snapshot and fit a model version's two models.

Writes into --model-uri (layout in models/store.py): the rating model (biases and explicit ALS),
the ranking model (implicit ALS), the exact split and metadata.json. Imports nothing from
Airflow; ship `movielens_recs` with --py-files. Its arguments are contracts.TrainJob; the params
are AlsParams as JSON, any key left out taking its default:

    spark-submit --py-files movielens_recs.zip spark_jobs/train_als.py \\
        --ratings=file:///.../ratings --dataset=ml-latest-small --snapshot-id=<md5> \\
        --model-id=m1 --model-uri=file:///.../models/ml-latest-small/m1 --params='{"rank": 10, "max_iter": 15}'
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import datetime, timezone


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("train_als")
    import pyspark
    from movielens_recs import __version__
    from movielens_recs.contracts import TrainJob
    from movielens_recs.jobs import parse_cutoff, start_session
    from movielens_recs.lake.filesystem import write_json
    from movielens_recs.models.params import AlsParams
    from movielens_recs.models.store import ModelLayout
    from movielens_recs.models.training import as_of, fit_ranking_model, fit_rating_model, split

    args = TrainJob.from_argv(sys.argv[1:] if argv is None else argv)
    params = AlsParams.from_dict(args.params)
    layout = ModelLayout(args.model_uri)
    cutoff = parse_cutoff(args.cutoff)
    spark = start_session(f"train-{args.model_id}", args.checkpoint_dir)
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
        rating_model = fit_rating_model(train, params)
        rating_seconds = time.perf_counter() - started
        started = time.perf_counter()
        ranking_model = fit_ranking_model(train, params)
        ranking_seconds = time.perf_counter() - started
        log.info("fitted %s on %d ratings: rating model %.1f s, ranking model %.1f s", params, counts["train"],
                 rating_seconds, ranking_seconds)

        rating_model.save(layout)
        ranking_model.write().overwrite().save(layout.ranking_als)
        train.write.mode("overwrite").parquet(layout.train)
        test.write.mode("overwrite").parquet(layout.test)
        metadata = {
            "model_id": args.model_id,
            "dataset": args.dataset,
            "snapshot_id": args.snapshot_id,
            "ratings_uri": args.ratings,
            "cutoff": cutoff.isoformat() if cutoff else None,
            "params": params.as_dict(),
            "split": {"kind": params.split, "test_fraction": params.test_fraction, "salt": params.split_salt},
            "rows": counts,
            "users": ranking_model.userFactors.count(),
            "items": ranking_model.itemFactors.count(),
            "fit_seconds": round(rating_seconds + ranking_seconds, 3),
            "rating_fit_seconds": round(rating_seconds, 3),
            "ranking_fit_seconds": round(ranking_seconds, 3),
            "global_mean": rating_model.terms.global_mean,
            "code_version": __version__,
            "spark_version": pyspark.__version__,
            "trained_at": datetime.now(timezone.utc).isoformat(),
        }
        write_json(layout.metadata, metadata)
        print(f"trained {args.model_id}: {counts['train']:,} training / {counts['test']:,} held-out ratings, "
              f"fit {rating_seconds:.1f} s (rating) + {ranking_seconds:.1f} s (ranking) -> {args.model_uri}",
              flush=True)
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
