"""spark-submit entry point: search both models' params on a validation fold (models/tuning.py).

Splits the snapshot exactly as training will (same split, salt and cutoff), carves a validation
fold out of the training ratings, runs the grid within the budget and writes the trail and the
best params as JSON to --output-uri. The test fold is never read. Imports nothing from Airflow.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime, timezone


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from movielens_recs.contracts import TuneJob
    from movielens_recs.evaluation.metrics import ranking_metrics
    from movielens_recs.jobs import parse_cutoff, start_session
    from movielens_recs.evaluation.spark_eval import model_lists, rating_errors, relevant_items
    from movielens_recs.models.params import AlsParams
    from movielens_recs.lake.filesystem import write_json
    from movielens_recs.models.training import as_of, fit_ranking_model, fit_rating_model, split, validation_split
    from movielens_recs.models.tuning import BUDGET_SECONDS, search
    from movielens_recs.recommend.topn_job import seen_movies

    args = TuneJob.from_argv(sys.argv[1:] if argv is None else argv)
    base = AlsParams.from_dict(args.params)
    cutoff = parse_cutoff(args.cutoff)
    spark = start_session(f"tune-{args.dataset}", args.checkpoint_dir)
    try:
        train, _ = split(as_of(spark.read.parquet(args.ratings), cutoff), base)
        fit_fold, validation = validation_split(train, base)
        fit_fold, validation = fit_fold.cache(), validation.cache()
        users = validation.select("user_id").distinct().cache()
        seen = seen_movies(fit_fold).cache()  # the same for every ranking trial
        relevant = relevant_items(validation)

        def measure(model: str, params: AlsParams) -> float:
            if model == "rating":
                fitted = fit_rating_model(fit_fold, params)
                rmse = rating_errors(fitted, validation)["rmse"]
                fitted.user_bias.unpersist()
                fitted.item_bias.unpersist()
                return rmse
            lists = model_lists(fit_ranking_model(fit_fold, params), seen, users, args.k)
            return ranking_metrics(lists, relevant, args.k).ndcg_at_k

        budget = args.budget_seconds if args.budget_seconds is not None else BUDGET_SECONDS[args.mode]
        result = search(base, args.mode, measure, budget, args.parallelism)
        result.update({"dataset": args.dataset, "k": args.k, "cutoff": cutoff.isoformat() if cutoff else None,
                       "rows": {"fit": fit_fold.count(), "validation": validation.count()},
                       "tuned_at": datetime.now(timezone.utc).isoformat()})
        write_json(args.output_uri, result)
    finally:
        spark.stop()
    for model in ("rating", "ranking"):
        top = result["best"][model]
        print(f"best {model} trial: {top['changes'] if top else 'none finished'}"
              + (f" (validation {'RMSE' if model == 'rating' else 'NDCG@' + str(args.k)} {top['score']:.4f})"
                 if top else ""), flush=True)
    print(f"{sum(t['status'] == 'done' for t in result['trials'])} of {len(result['trials'])} trials in "
          f"{result['elapsed_seconds']:.0f} s -> {args.output_uri}", flush=True)
    return 0 if any(t["status"] == "done" for t in result["trials"]) else 1


if __name__ == "__main__":
    sys.exit(main())
