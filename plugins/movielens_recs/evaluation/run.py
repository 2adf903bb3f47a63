"""The evaluation half of spark_jobs/train_evaluate.py: measure a model version against its
baselines and the champion, and write metrics.json and the evaluation report beside it.

On the version's held-out ratings: RMSE and MAE of the rating model and of the bias baseline;
precision, recall, NDCG (held-out = relevant, and held-out rated 4+ = relevant), MAP at k and
catalog coverage of the ranking model and of popularity, on the same users. When a champion is
given, both versions on the fair set: held-out ratings the champion did not train on either.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from movielens_recs.lake.filesystem import write_json
from movielens_recs.models.store import ModelLayout


def _version(spark, model_id: str, uri: str) -> dict:
    from movielens_recs.models.training import load_ranking_model, load_rating_model

    layout = ModelLayout(uri)
    return {"model_id": model_id, "layout": layout, "rating": load_rating_model(spark, layout),
            "ranker": load_ranking_model(layout), "train": spark.read.parquet(layout.train)}


def evaluate_version(spark, job) -> dict:
    """`job`: contracts.TrainEvaluateJob. Returns what it wrote to metrics.json."""
    from movielens_recs.evaluation.report import with_ratios
    from movielens_recs.evaluation.spark_eval import (
        bias_errors,
        fair_comparison,
        ranking_lists,
        rating_errors,
        report_breakdown,
    )
    from movielens_recs.operator_view import evaluation_report

    started = time.perf_counter()
    candidate = _version(spark, job.model_id, job.model_uri)
    candidate["train"] = candidate["train"].cache()
    test = spark.read.parquet(candidate["layout"].test).cache()
    rating = candidate["rating"]
    errors = rating_errors(rating, test)
    bias = bias_errors(rating.terms, rating.user_bias, rating.item_bias, test)
    lists = ranking_lists(candidate["ranker"], candidate["train"], test, job.k)
    ranking = lists.report()
    fair = None
    if job.champion_model_uri:
        fair = fair_comparison(candidate, _version(spark, job.champion_model_id, job.champion_model_uri), test, job.k)
    metrics = with_ratios({
        "model_id": job.model_id,
        "k": job.k,
        "model": {**errors, **ranking["model"]},
        "bias": bias,
        "popularity": ranking["popularity"],
        "fair": fair,
        "catalog_items": ranking["catalog_items"],
        "evaluate_seconds": round(time.perf_counter() - started, 3),
        "evaluated_at": datetime.now(timezone.utc).isoformat(),
    })
    write_json(candidate["layout"].metrics, metrics)
    evaluation_report.write(candidate["layout"], metrics, report_breakdown(rating, candidate["train"], test, lists))
    return metrics
