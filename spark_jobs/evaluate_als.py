"""spark-submit entry point: measure a trained model on its held-out ratings.

RMSE and MAE on the held-out ratings; precision, recall, NDCG and MAP at k plus catalog
coverage on the users with held-out ratings (items they rated in training excluded), for the
model and for a popularity baseline on the same split; and, when a champion is given, the
champion's RMSE and MAE on this same test set. Writes metrics.json beside the model. Imports
nothing from Airflow; ship `movielens_recs` with --py-files.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import datetime, timezone


def parse_args(argv):
    p = argparse.ArgumentParser(description="Evaluate an ALS model against a popularity baseline")
    p.add_argument("--model-id", required=True)
    p.add_argument("--model-uri", required=True)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--champion-model-id", default="")
    p.add_argument("--champion-model-uri", default="")
    return p.parse_args(argv)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(sys.argv[1:] if argv is None else argv)

    from pyspark.ml.recommendation import ALSModel
    from pyspark.sql import SparkSession

    from movielens_recs.evaluation.spark_eval import ranking_report, rating_errors
    from movielens_recs.models.store import write_json

    spark = SparkSession.builder.appName(f"evaluate-{args.model_id}").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    started = time.perf_counter()
    try:
        model = ALSModel.load(f"{args.model_uri}/als")
        train = spark.read.parquet(f"{args.model_uri}/split/train").cache()
        test = spark.read.parquet(f"{args.model_uri}/split/test").cache()
        errors = rating_errors(model, test)
        ranking = ranking_report(model, train, test, args.k)
        champion = None
        if args.champion_model_uri:
            champion_model = ALSModel.load(f"{args.champion_model_uri}/als")
            champion = {"model_id": args.champion_model_id, **rating_errors(champion_model, test)}
        metrics = {
            "model_id": args.model_id,
            "k": args.k,
            "model": {**errors, **ranking["model"]},
            "baseline": ranking["baseline"],
            "champion_on_test": champion,
            "catalog_items": ranking["catalog_items"],
            "evaluate_seconds": round(time.perf_counter() - started, 3),
            "evaluated_at": datetime.now(timezone.utc).isoformat(),
        }
        write_json(f"{args.model_uri}/metrics.json", metrics)
    finally:
        spark.stop()
    m, b = metrics["model"], metrics["baseline"]
    print(f"model    {args.model_id}: RMSE {m['rmse']:.4f}  MAE {m['mae']:.4f}  "
          f"P@{args.k} {m['precision_at_k']:.4f}  R@{args.k} {m['recall_at_k']:.4f}  "
          f"NDCG@{args.k} {m['ndcg_at_k']:.4f}  MAP@{args.k} {m['map_at_k']:.4f}  coverage {m['coverage']:.3f}")
    print(f"baseline popularity: P@{args.k} {b['precision_at_k']:.4f}  R@{args.k} {b['recall_at_k']:.4f}  "
          f"NDCG@{args.k} {b['ndcg_at_k']:.4f}  MAP@{args.k} {b['map_at_k']:.4f}  coverage {b['coverage']:.3f}")
    if champion:
        print(f"champion {champion['model_id']} on this test set: RMSE {champion['rmse']:.4f}  MAE {champion['mae']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
