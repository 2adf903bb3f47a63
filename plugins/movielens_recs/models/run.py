"""The training half of spark_jobs/train_evaluate.py: split a validated snapshot and fit a model
version's two models into its folder (layout in models/store.py), metadata.json last."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

from movielens_recs.lake.filesystem import read_json_if_present, write_json
from movielens_recs.models.store import ModelLayout

log = logging.getLogger(__name__)


class NothingToTrain(ValueError):
    """The cutoff leaves no ratings to train on, or none to hold out."""


def training_rows(layout: ModelLayout) -> int | None:
    """How many ratings the version was trained on, as its metadata records; None if it does not."""
    metadata = read_json_if_present(layout.metadata) or {}
    return (metadata.get("rows") or {}).get("train")


def already_trained(job) -> dict | None:
    """The version's metadata when this registration already trained it: a retry of the task
    then evaluates the models it has instead of fitting them again. A new registration (a rerun
    of the run) trains afresh, as the registry's reset promises."""
    if not job.registration:
        return None
    metadata = read_json_if_present(ModelLayout(job.model_uri).metadata)
    if metadata and metadata.get("model_id") == job.model_id and metadata.get("registration") == job.registration:
        return metadata
    return None


def train_version(spark, job) -> dict:
    """`job`: contracts.TrainEvaluateJob. Returns what it wrote to metadata.json."""
    import pyspark

    from movielens_recs import __version__
    from movielens_recs.jobs import parse_cutoff
    from movielens_recs.models.params import AlsParams
    from movielens_recs.models.training import as_of, fit_ranking_model, fit_rating_model, split

    params = AlsParams.from_dict(job.params)
    layout = ModelLayout(job.model_uri)
    cutoff = parse_cutoff(job.cutoff)
    ratings = as_of(spark.read.parquet(job.ratings), cutoff)
    train, test = split(ratings, params)
    train = train.cache()
    test = test.cache()
    counts = {"train": train.count(), "test": test.count()}
    counts["ratings"] = counts["train"] + counts["test"]
    if counts["train"] == 0 or counts["test"] == 0:
        raise NothingToTrain(f"nothing to train or test on: {counts} (cutoff {cutoff})")
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
        "model_id": job.model_id,
        "registration": job.registration,
        "dataset": job.dataset,
        "snapshot_id": job.snapshot_id,
        "ratings_uri": job.ratings,
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
    write_json(layout.metadata, metadata)  # last: its presence means the version is whole
    train.unpersist()
    test.unpersist()
    return metadata
