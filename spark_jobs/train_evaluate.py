"""spark-submit entry point: train a model version, then evaluate it, in one application.

Training splits a validated snapshot and fits the rating model (biases and explicit ALS) and the
ranking model (implicit ALS) into --model-uri (layout in models/store.py), metadata.json last
(models/run.py). Evaluation measures them against their baselines and the champion and writes
metrics.json and the evaluation report beside them (evaluation/run.py). A retry under the same
--registration finds the version trained and only evaluates it. Imports nothing from Airflow;
ship `movielens_recs` with --py-files. Its arguments are contracts.TrainEvaluateJob; the params
are AlsParams as JSON, any key left out taking its default:

    spark-submit --py-files movielens_recs.zip spark_jobs/train_evaluate.py \\
        --ratings=file:///.../ratings --dataset=ml-latest-small --snapshot-id=<md5> \\
        --model-id=m1 --model-uri=file:///.../models/ml-latest-small/m1 --params='{"rank": 10, "max_iter": 15}'
"""

from __future__ import annotations

import logging
import sys


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("train_evaluate")
    from movielens_recs.contracts import TrainEvaluateJob
    from movielens_recs.errors import EXIT_BAD_INPUT
    from movielens_recs.evaluation.report import summary_lines
    from movielens_recs.evaluation.run import evaluate_version
    from movielens_recs.jobs import start_session
    from movielens_recs.models.run import NothingToTrain, already_trained, train_version

    job = TrainEvaluateJob.from_argv(sys.argv[1:] if argv is None else argv)
    spark = start_session(f"train-evaluate-{job.model_id}", job.checkpoint_dir)

    try:
        trained = already_trained(job)
        if trained:
            print(f"{job.model_id} was trained by this registration at {trained['trained_at']}: "
                  "evaluating it without fitting it again", flush=True)
        else:
            try:
                trained = train_version(spark, job)
            except NothingToTrain as exc:  # the same cutoff and snapshot would fail again
                log.error("%s", exc)
                return EXIT_BAD_INPUT
            print(f"trained {job.model_id}: {trained['rows']['train']:,} training / {trained['rows']['test']:,} "
                  f"held-out ratings, fit {trained['rating_fit_seconds']:.1f} s (rating) + "
                  f"{trained['ranking_fit_seconds']:.1f} s (ranking) -> {job.model_uri}", flush=True)
        metrics = evaluate_version(spark, job)
    finally:
        spark.stop()
    print("\n".join(summary_lines(metrics)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
