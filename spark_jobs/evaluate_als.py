"""spark-submit entry point: measure a model version against its baselines and the champion.

On the version's held-out ratings: RMSE and MAE of the rating model and of the bias baseline;
precision, recall, NDCG (held-out = relevant, and held-out rated 4+ = relevant), MAP at k and
catalog coverage of the ranking model and of popularity, on the same users. When a champion is
given, both versions on the fair set: held-out ratings the champion did not train on either.
Writes metrics.json beside the models, and the evaluation report (report.html, with the figures
behind it in report.json). Imports nothing from Airflow; ship `movielens_recs` with
--py-files.
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import datetime, timezone


def _version(spark, model_id: str, uri: str) -> dict:
    from movielens_recs.models.store import ModelLayout
    from movielens_recs.models.training import load_ranking_model, load_rating_model

    layout = ModelLayout(uri)
    return {"model_id": model_id, "layout": layout, "rating": load_rating_model(spark, layout),
            "ranker": load_ranking_model(layout), "train": spark.read.parquet(layout.train)}


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from movielens_recs.contracts import EvaluateJob

    args = EvaluateJob.from_argv(sys.argv[1:] if argv is None else argv)

    from movielens_recs.evaluation.report import summary_lines, with_ratios
    from movielens_recs.evaluation.spark_eval import (
        bias_errors,
        fair_comparison,
        ranking_lists,
        rating_errors,
        report_breakdown,
    )
    from movielens_recs.jobs import start_session
    from movielens_recs.lake.filesystem import write_json
    from movielens_recs.operator_view import evaluation_report

    spark = start_session(f"evaluate-{args.model_id}")
    started = time.perf_counter()
    try:
        candidate = _version(spark, args.model_id, args.model_uri)
        candidate["train"] = candidate["train"].cache()
        test = spark.read.parquet(candidate["layout"].test).cache()
        rating = candidate["rating"]
        errors = rating_errors(rating, test)
        bias = bias_errors(rating.terms, rating.user_bias, rating.item_bias, test)
        lists = ranking_lists(candidate["ranker"], candidate["train"], test, args.k)
        ranking = lists.report()
        fair = None
        if args.champion_model_uri:
            fair = fair_comparison(candidate, _version(spark, args.champion_model_id, args.champion_model_uri),
                                   test, args.k)
        metrics = with_ratios({
            "model_id": args.model_id,
            "k": args.k,
            "model": {**errors, **ranking["model"]},
            "bias": bias,
            "popularity": ranking["popularity"],
            "fair": fair,
            "catalog_items": ranking["catalog_items"],
            "evaluate_seconds": round(time.perf_counter() - started, 3),
            "evaluated_at": datetime.now(timezone.utc).isoformat(),
        })
        write_json(candidate["layout"].metrics, metrics)
        evaluation_report.write(candidate["layout"], metrics,
                                report_breakdown(rating, candidate["train"], test, lists))
    finally:
        spark.stop()
    print("\n".join(summary_lines(metrics)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
