"""Task bodies of the model stages: register a candidate, and the promotion gate."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from datetime import datetime

from movielens_recs import registry
from movielens_recs.config import Settings
from movielens_recs.gate import GateConfig, decide
from movielens_recs.models.params import AlsParams
from movielens_recs.models.store import model_dir, read_json
from movielens_recs.orchestration.connections import postgres_connect
from movielens_recs.orchestration.notify import on_rejection

log = logging.getLogger(__name__)


def model_id_for(dataset: str, logical_date: datetime, snapshot_id: str, params: AlsParams, run_id: str) -> str:
    """Readable (dataset and day first) and unique to the run, the data and the params."""
    digest = hashlib.sha1(
        json.dumps([run_id, snapshot_id, params.as_dict()], sort_keys=True).encode()
    ).hexdigest()[:10]
    return f"{dataset}-{logical_date:%Y%m%d}-{digest}"


def prepare_model(ready: dict, dag_params: dict, run_id: str, logical_date: datetime) -> dict:
    settings = Settings.from_env()
    params = AlsParams.from_dict(dag_params)
    dataset = ready["dataset"]
    model_id = model_id_for(dataset, logical_date, ready["snapshot_id"], params, run_id)
    uri = model_dir(settings.model_store_uri, dataset, model_id)
    with postgres_connect() as conn:
        registry.ensure_schema(conn)
        registry.register(conn, registry.ModelRecord(
            model_id=model_id, dataset=dataset, snapshot_id=ready["snapshot_id"], model_uri=uri,
            params=params.as_dict(), dag_run_id=run_id, logical_date=logical_date,
        ))
        champion = registry.champion(conn, dataset)
    log.info("candidate %s at %s; champion %s", model_id, uri, champion["model_id"] if champion else "none")
    return {
        "model_id": model_id,
        "model_uri": uri,
        "dataset": dataset,
        "snapshot_id": ready["snapshot_id"],
        "ratings_spark_uri": ready["ratings_spark_uri"],
        "movies_spark_uri": ready["movies_spark_uri"],
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
    decision = decide(metrics, gate_config(prepared["dataset"], dag_params))
    report = _metrics_table(metrics) + "\n" + decision.explain()
    log.info("model %s\n%s", prepared["model_id"], report)
    with postgres_connect() as conn:
        registry.record_metrics(conn, prepared["model_id"], metrics)
        if decision.promote:
            # champion only once its recommendations are published (see publishing.promote)
            registry.approve(conn, prepared["model_id"], decision.as_dict())
            log.info("approved %s; it becomes champion of %s once its recommendations are published",
                     prepared["model_id"], prepared["dataset"])
        else:
            registry.reject(conn, prepared["model_id"], decision.as_dict())
            on_rejection(context, f"model {prepared['model_id']} rejected by the gate; champion unchanged\n{report}")
    return decision.promote


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
