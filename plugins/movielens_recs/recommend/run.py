"""The body of spark_jobs/recommend.py: compute, write, read back, validate, mark publishable."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

from movielens_recs.evaluation.breakdown import popularity_skew
from movielens_recs.evaluation.spark_eval import value_counts
from movielens_recs.jobs import spread_over_cores
from movielens_recs.lake.filesystem import join, write_json
from movielens_recs.models.run import training_rows
from movielens_recs.models.store import ModelLayout
from movielens_recs.models.training import as_of, load_ranking_model, load_rating_model
from movielens_recs.operator_view import evaluation_report
from movielens_recs.recommend.output import COLD_START, MARKER, RECOMMENDATIONS, REPORT, remove_marker
from movielens_recs.recommend.topn_job import cold_start, recommend_all
from movielens_recs.validation.recommendations_check import build_recommendation_frames, validate_recommendations


def run_recommend(spark, *, model_id: str, model_uri: str, ratings_uri: str, movies_uri: str, top_n: int,
                  output: str, expectations_dir: Path, cold_start_min_average: float = 3.5,
                  data_docs_dir: Path | None = None, cutoff: datetime | None = None,
                  excluded: list[int] | None = None, promotion: dict | None = None):
    """Returns (report, marker); the marker is written, last, only if the output passed.

    `cutoff`: the model's; what users had rated by then is excluded, and the cold-start list is
    what was popular by then. `excluded`, `promotion`: the dataset's rules (recommend/rules.py)."""
    remove_marker(output)  # a rerun must not leave an earlier run's marker over new files
    layout = ModelLayout(model_uri)
    model = load_ranking_model(layout)
    ratings = as_of(spark.read.parquet(ratings_uri), cutoff)
    movies = spark.read.parquet(movies_uri)
    generated_at = datetime.now(timezone.utc)

    started = time.perf_counter()
    excluded = sorted(set(excluded or []))
    with spread_over_cores(spark, training_rows(layout)):
        recommend_all(model, load_rating_model(spark, layout), ratings, movies, top_n, excluded,
                      promotion).write.mode("overwrite").parquet(join(output, RECOMMENDATIONS))
    topn_seconds = time.perf_counter() - started
    cold_start(ratings, movies, top_n, cold_start_min_average, excluded, promotion).write.mode("overwrite").parquet(join(output, COLD_START))

    # validate what was written, not what would be recomputed
    recs = spark.read.parquet(join(output, RECOMMENDATIONS))
    cold = spark.read.parquet(join(output, COLD_START))
    frames = build_recommendation_frames(recs, cold, model.userFactors, model.itemFactors, ratings, movies, top_n,
                                         excluded)
    report = validate_recommendations(frames, expectations_dir, top_n, data_docs_dir)
    users = model.userFactors.count()
    summary = {
        "model_version": model_id,
        "top_n": top_n,
        "users": users,
        "rows": recs.count(),
        "cold_rows": cold.count(),
        "generated_at": generated_at.isoformat(),
        "topn_seconds": round(topn_seconds, 3),
        "users_per_second": round(users / topn_seconds, 1) if topn_seconds else None,
        "cold_start_min_average": cold_start_min_average,
        "cutoff": cutoff.isoformat() if cutoff else None,
        "excluded_movies": len(excluded),
        "promotion": promotion or None,
    }
    write_json(join(output, REPORT), {**summary, **report.to_dict()})
    if not report.success:
        return report, None
    # the evaluation report gains the published lists' coverage and skew before they are publishable
    evaluation_report.add_published(layout, popularity_skew(value_counts(recs, "movie_id"), value_counts(ratings, "movie_id")))
    write_json(join(output, MARKER), {**summary, "validation": report.statistics})
    return report, summary
