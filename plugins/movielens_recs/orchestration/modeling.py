"""Task bodies of the model stages: register a candidate, and the promotion gate."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from datetime import datetime

from airflow.sdk.exceptions import AirflowSkipException

from movielens_recs import registry
from movielens_recs.config import Settings
from movielens_recs.gate import GateConfig, decide, overruled
from movielens_recs.models.params import AlsParams
from movielens_recs.models.store import model_dir, read_json
from movielens_recs.orchestration.connections import postgres_connect
from movielens_recs.orchestration.notify import on_rejection

log = logging.getLogger(__name__)


def model_id_for(dataset: str, cutoff: datetime, snapshot_id: str, params: AlsParams, run_id: str | None = None) -> str:
    """Readable (dataset and day first) and the same for the same data, cutoff and params, so
    that rerunning a run, or one of its tasks, writes to the same places and registry row.
    A run without a logical date (a manual trigger without one) has only itself to key on."""
    key = [cutoff.isoformat(), snapshot_id, params.as_dict()] + ([run_id] if run_id else [])
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]
    return f"{dataset}-{cutoff:%Y%m%d}-{digest}"


def cutoff_for(context: dict) -> datetime:
    """A run trains on the ratings made before the end of its data interval."""
    for key in ("data_interval_end", "logical_date", "run_after"):
        if context.get(key) is not None:
            return context[key]
    raise ValueError("the run has no data interval, logical date or run_after to cut the data at")


def prepare_model(ready: dict, dag_params: dict, context: dict) -> dict:
    settings = Settings.from_env()
    params = AlsParams.from_dict(dag_params)
    dataset = ready["dataset"]
    run_id = context.get("run_id")
    cutoff = cutoff_for(context)
    keyed_by_run = context.get("logical_date") is None
    model_id = model_id_for(dataset, cutoff, ready["snapshot_id"], params, run_id if keyed_by_run else None)
    uri = model_dir(settings.model_store_uri, dataset, model_id)
    with postgres_connect() as conn:
        registry.ensure_schema(conn)
        try:
            registry.register(conn, registry.ModelRecord(
                model_id=model_id, dataset=dataset, snapshot_id=ready["snapshot_id"], model_uri=uri,
                params=params.as_dict(), dag_run_id=run_id, logical_date=context.get("logical_date"), cutoff=cutoff,
            ))
        except registry.AlreadyDecided as exc:
            # a rerun of a run that finished: its model, registry row and publication stand
            raise AirflowSkipException(f"{exc}: an earlier run did this work, nothing to redo") from None
        champion = registry.champion(conn, dataset)
    log.info("candidate %s (ratings before %s) at %s; champion %s", model_id, cutoff.isoformat(), uri,
             champion["model_id"] if champion else "none")
    return {
        "model_id": model_id,
        "model_uri": uri,
        "dataset": dataset,
        "snapshot_id": ready["snapshot_id"],
        "ratings_spark_uri": ready["ratings_spark_uri"],
        "movies_spark_uri": ready["movies_spark_uri"],
        "cutoff": cutoff.isoformat(),
        "params": params.as_dict(),
        "k": int(dag_params.get("k") or 10),
        "champion_id": champion["model_id"] if champion else "",
        "champion_uri": champion["model_uri"] if champion else "",
        "checkpoint_dir": settings.checkpoint_dir,
    }


def gate_config(dataset: str, dag_params: dict, env=None) -> GateConfig:
    """A run's DAG params win, then MLRECS_GATE_* settings, then the dataset's defaults."""
    env = os.environ if env is None else env

    def pick(param: str, variable: str, cast):
        if dag_params.get(param) is not None:
            return cast(dag_params[param])
        raw = env.get(variable)
        return cast(raw) if raw not in (None, "") else None

    return GateConfig.for_dataset(
        dataset,
        rmse_ceiling=pick("rmse_ceiling", "MLRECS_GATE_RMSE_CEILING", float),
        champion_tolerance=pick("champion_tolerance", "MLRECS_GATE_CHAMPION_TOLERANCE", float),
        require_beat_baseline=pick("require_beat_baseline", "MLRECS_GATE_REQUIRE_BEAT_BASELINE", _boolean),
    )


def _boolean(value) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("1", "true", "yes", "on"):
        return True
    if str(value).lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def run_gate(prepared: dict, dag_params: dict, context) -> bool:
    """Decide and record the decision in the registry. True only when approved for publishing."""
    metrics = read_json(f"{prepared['model_uri']}/metrics.json")
    trained = read_json(f"{prepared['model_uri']}/metadata.json")
    decision = decide(metrics, gate_config(prepared["dataset"], dag_params))
    report = _metrics_table(metrics) + "\n" + decision.explain()
    log.info("model %s (trained on %s ratings before %s)\n%s", prepared["model_id"], f"{trained['rows']['train']:,}",
             prepared["cutoff"], report)
    with postgres_connect() as conn:
        registry.record_metrics(conn, prepared["model_id"], metrics, training_rows=trained["rows"]["train"])
        candidate = registry.get(conn, prepared["model_id"])
        champion = registry.champion(conn, prepared["dataset"])
        if registry.is_older_than(candidate, champion):
            registry.mark_historical(conn, prepared["model_id"], historical_decision(decision.as_dict(), champion))
            log.info("model %s is historical: champion %s was trained on later data (cutoff %s); "
                     "recorded, not promoted, nothing published", prepared["model_id"], champion["model_id"],
                     champion["cutoff"].isoformat())
            return False
        if decision.promote:
            # champion only once its recommendations are published (see publishing.publish)
            registry.approve(conn, prepared["model_id"], decision.as_dict())
            log.info("approved %s; it becomes champion of %s once its recommendations are published",
                     prepared["model_id"], prepared["dataset"])
        else:
            registry.reject(conn, prepared["model_id"], decision.as_dict())
            on_rejection(context, f"model {prepared['model_id']} rejected by the gate; champion unchanged\n{report}")
    return decision.promote


def historical_decision(decision: dict | None, champion: dict) -> dict:
    """The gate's decision, plus why a model for an older date never replaces a newer one."""
    return overruled(decision, "not_older_than_champion",
                     f"champion {champion['model_id']} was trained on ratings up to {champion['cutoff'].isoformat()}; "
                     "a backfill for an earlier date is recorded as historical, never promoted or published")


def _metrics_table(metrics: dict) -> str:
    k = metrics["k"]
    m, b = metrics["model"], metrics["baseline"]
    rows = [f"{'':10} {'RMSE':>7} {'MAE':>7} {'P@' + str(k):>7} {'R@' + str(k):>7} {'NDCG@' + str(k):>8} {'MAP@' + str(k):>7} {'cover':>6}",
            f"{'model':10} {m['rmse']:7.4f} {m['mae']:7.4f} {m['precision_at_k']:7.4f} {m['recall_at_k']:7.4f} {m['ndcg_at_k']:8.4f} {m['map_at_k']:7.4f} {m['coverage']:6.3f}",
            f"{'popular':10} {'':>7} {'':>7} {b['precision_at_k']:7.4f} {b['recall_at_k']:7.4f} {b['ndcg_at_k']:8.4f} {b['map_at_k']:7.4f} {b['coverage']:6.3f}"]
    champion = metrics.get("champion_on_test")
    if champion:
        rows.append(f"{'champion':10} {champion['rmse']:7.4f} {champion['mae']:7.4f}   ({champion['model_id']}, same test set)")
    return "\n".join(rows)
