"""Task bodies of the model stages: register a candidate (with the dataset's tuned params), and
the promotion gate. The decisions are the lifecycle's (lifecycle.py); this module only turns its
outcomes into Airflow skips and notifications."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from datetime import datetime

from airflow.sdk.exceptions import AirflowSkipException

from movielens_recs import lifecycle, registry
from movielens_recs.config import Settings
from movielens_recs.contracts import cutoff_for
from movielens_recs.errors import PipelineInputError
from movielens_recs.gate import GateConfig
from movielens_recs.lake.filesystem import read_json
from movielens_recs.models.params import AlsParams
from movielens_recs.models.store import ModelLayout, model_dir
from movielens_recs.orchestration.connections import lake_s3_options, postgres_connect
from movielens_recs.orchestration.notify import on_rejection
from movielens_recs.orchestration.tasks import fail_without_retry

log = logging.getLogger(__name__)


def model_id_for(dataset: str, cutoff: datetime, snapshot_id: str, params: AlsParams, run_id: str | None = None) -> str:
    """Readable (dataset and day first) and the same for the same data, cutoff and params, so
    that rerunning a run, or one of its tasks, writes to the same places and registry row.
    A run without a logical date (a manual trigger without one) has only itself to key on."""
    key = [cutoff.isoformat(), snapshot_id, params.as_dict()] + ([run_id] if run_id else [])
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]
    return f"{dataset}-{cutoff:%Y%m%d}-{digest}"


def resolve_params(dag_params: dict, tuned: dict | None) -> AlsParams:
    """A run's own params win, then the dataset's newest tuned params, then the built-in defaults."""
    chosen = {**((tuned or {}).get("best_params") or {}),
              **{k: v for k, v in dag_params.items() if v is not None}}
    return AlsParams.from_dict(chosen)


def prepare_model(ready: dict, dag_params: dict, context: dict, tuning: dict | None = None) -> dict:
    """`tuning`: what the run's tune task found, if it ran; it is recorded as the dataset's newest
    search before the params are chosen."""
    settings = Settings.from_env()
    dataset = ready["dataset"]
    run_id = context.get("run_id")
    cutoff = cutoff_for(context)
    excluded, promotion = apply_rules(settings, ready)
    with postgres_connect(settings.db_schema) as conn:
        registry.ensure_schema(conn)
        if tuning:
            result = read_json(tuning["output_uri"])
            registry.record_tuning(conn, dataset, result["mode"], result["best_params"], result,
                                   dag_run_id=run_id, snapshot_id=ready["snapshot_id"], cutoff=cutoff)
        tuned = registry.tuned(conn, dataset)
        params = resolve_params(dag_params, tuned)
        keyed_by_run = context.get("logical_date") is None
        model_id = model_id_for(dataset, cutoff, ready["snapshot_id"], params, run_id if keyed_by_run else None)
        uri = model_dir(settings.model_store_uri, dataset, model_id)
        outcome = lifecycle.register(conn, registry.ModelRecord(
            model_id=model_id, dataset=dataset, snapshot_id=ready["snapshot_id"], model_uri=uri,
            params=params.as_dict(), dag_run_id=run_id, logical_date=context.get("logical_date"), cutoff=cutoff,
        ))
    if not outcome.proceed:
        # a rerun of a run that finished: its model, registry row and publication stand
        raise AirflowSkipException(outcome.message)
    champion = outcome.details["champion"]
    log.info("candidate %s (ratings before %s) at %s with %s params %s; champion %s", model_id, cutoff.isoformat(),
             uri, f"tuned (search {tuned['id']})" if tuned else "default", params.as_dict(),
             champion["model_id"] if champion else "none")
    return {
        "model_id": model_id,
        "model_uri": uri,
        # a fresh mark per registration: a retry of train_evaluate under it resumes, a rerun retrains
        "registration": uuid.uuid4().hex,
        "dataset": dataset,
        "snapshot_id": ready["snapshot_id"],
        "ratings_spark_uri": ready["ratings_spark_uri"],
        "movies_spark_uri": ready["movies_spark_uri"],
        "cutoff": cutoff.isoformat(),
        "params": params.as_dict(),
        "tuned_from": tuned["id"] if tuned else None,
        "k": int(dag_params.get("k") or 10),
        "champion_id": champion["model_id"] if champion else "",
        "champion_uri": champion["model_uri"] if champion else "",
        "checkpoint_dir": settings.checkpoint_dir,
        "excluded_movies": excluded,
        "promotion": promotion,
    }


def apply_rules(settings: Settings, ready: dict) -> tuple[list[int], dict]:
    """(excluded movie ids, promotion): the dataset's rules checked against its snapshot's
    catalog before anything is trained; a bad rules file fails the run at once (no retry),
    naming the problem."""
    import pyarrow.parquet as pq

    from movielens_recs.lake.filesystem import resolve
    from movielens_recs.recommend.rules import Rules

    try:
        rules = Rules.load(settings.rules_dir, ready["dataset"])
        filesystem, path = resolve(ready["movies_uri"], lake_s3_options(settings.lake_uri))
        excluded = rules.excluded_ids(pq.read_table(path, filesystem=filesystem, columns=["movie_id", "genres"]))
    except PipelineInputError as exc:
        raise fail_without_retry(exc) from exc
    if excluded or rules.promotion.movies:
        log.info("rules %s: %d movies excluded from every list; promoted %s", rules.source, len(excluded),
                 rules.promotion.as_dict() if rules.promotion.movies else "none")
    return excluded, rules.promotion.as_dict() if rules.promotion.movies else {}


def gate_config(dataset: str, dag_params: dict, settings: Settings) -> GateConfig:
    """A run's DAG params win, then MLRECS_GATE_* settings, then the dataset's defaults."""
    return GateConfig.for_dataset(dataset, **{
        name: dag_params[name] if dag_params.get(name) is not None else settings.gate.get(name)
        for name in GateConfig.names()})


def run_gate(prepared: dict, dag_params: dict, context) -> bool:
    """Decide and record the decision in the registry. True only when approved for publishing."""
    layout = ModelLayout(prepared["model_uri"])
    metrics = read_json(layout.metrics)
    trained = read_json(layout.metadata)
    settings = Settings.from_env()
    config = gate_config(prepared["dataset"], dag_params, settings)
    with postgres_connect(settings.db_schema) as conn:
        outcome = lifecycle.judge(conn, prepared["model_id"], metrics, config, training_rows=trained["rows"]["train"])
    log.info("model %s (trained on %s ratings before %s)\n%s", prepared["model_id"], f"{trained['rows']['train']:,}",
             prepared["cutoff"], outcome.message)
    if outcome.notify:
        on_rejection(context, outcome.message)
    return outcome.proceed
