"""Hyperparameter search for both models, on the cluster, within a time budget.

A grid per model, each trial fitted on the training ratings minus a validation fold carved out of
them (models.training.validation_split) and measured on that fold: the rating model by RMSE, the
ranking model by NDCG@k. The test fold is never read. Trials run from a thread pool on the
driver, so `parallelism` ALS fits share the cluster at once (Spark runs jobs from several threads
concurrently); once the budget is spent no new trial starts, and the ones skipped are recorded.

Why a grid, not Optuna or Hyperopt: neither is in the lock, both would run each trial as a Spark
job from the driver just the same (ALS is already distributed; Hyperopt's SparkTrials distributes
single-machine trials, which ALS is not), and with a few dozen trials a grid's trail is easy to
read and to repeat. `full` searches more of each axis, not a smarter order.
"""

from __future__ import annotations

import itertools
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from movielens_recs.models.params import AlsParams

log = logging.getLogger(__name__)

MODES = ("off", "quick", "full")
GRIDS = {
    "quick": {
        "rating": {"rank": [10, 20], "reg_param": [0.1, 0.2]},
        "ranking": {"ranking_rank": [32, 64], "ranking_alpha": [1.0, 5.0]},
    },
    "full": {
        "rating": {"rank": [10, 20, 40], "reg_param": [0.1, 0.15, 0.2, 0.3], "bias_damping": [3.0, 5.0, 10.0]},
        "ranking": {"ranking_rank": [32, 64, 128], "ranking_reg_param": [0.03, 0.1, 0.3],
                    "ranking_alpha": [0.5, 1.0, 5.0], "ranking_preference": ["rated", "centered"]},
    },
}
BUDGET_SECONDS = {"quick": 420, "full": 3600}


@dataclass(frozen=True)
class Trial:
    model: str  # "rating" or "ranking"
    changes: dict


def trials(mode: str) -> list[Trial]:
    if mode not in GRIDS:
        raise ValueError(f"tuning mode must be one of {', '.join(GRIDS)}, not {mode!r}")
    out = []
    for model, grid in GRIDS[mode].items():
        keys = sorted(grid)
        out += [Trial(model, dict(zip(keys, values))) for values in itertools.product(*(grid[k] for k in keys))]
    return out


def best(results: list[dict], model: str) -> dict | None:
    """The finished trial of `model` with the lowest validation RMSE (rating) or highest NDCG (ranking)."""
    done = [r for r in results if r["model"] == model and r["status"] == "done"]
    if not done:
        return None
    return (min(done, key=lambda r: r["score"]) if model == "rating" else max(done, key=lambda r: r["score"]))


def search(base: AlsParams, mode: str, measure, budget_seconds: float, parallelism: int = 1) -> dict:
    """Run `mode`'s trials; `measure(model, params)` fits one model and returns its validation
    score. Returns the trail (every trial, its params, score, seconds or why it did not run) and
    the best params: `base` changed by the best trial of each model."""
    started = time.perf_counter()

    def run(trial: Trial) -> dict:
        record = {"model": trial.model, "changes": trial.changes}
        if time.perf_counter() - started > budget_seconds:
            return {**record, "status": "skipped", "reason": f"budget of {budget_seconds:.0f} s spent"}
        params = base.replace(**trial.changes)
        began = time.perf_counter()
        try:
            score = measure(trial.model, params)
        except Exception as exc:  # one bad corner of the grid must not lose the others
            log.exception("trial %s failed", trial)
            return {**record, "status": "failed", "reason": str(exc)[:500]}
        seconds = time.perf_counter() - began
        log.info("trial %s %s: %s %.4f in %.1f s", trial.model, trial.changes,
                 "RMSE" if trial.model == "rating" else "NDCG", score, seconds)
        return {**record, "status": "done", "score": score, "seconds": round(seconds, 2)}

    with ThreadPoolExecutor(max_workers=max(1, parallelism)) as pool:
        results = list(pool.map(run, trials(mode)))
    chosen = {}
    for model in ("rating", "ranking"):
        winner = best(results, model)
        if winner:
            chosen.update(winner["changes"])
    best_params = base.replace(**chosen)
    return {
        "mode": mode,
        "metric": {"rating": "validation RMSE (lower is better)", "ranking": "validation NDCG@k (higher is better)"},
        "base_params": base.as_dict(),
        "best_params": best_params.as_dict(),
        "best": {model: best(results, model) for model in ("rating", "ranking")},
        "trials": results,
        "budget_seconds": budget_seconds,
        "parallelism": parallelism,
        "elapsed_seconds": round(time.perf_counter() - started, 2),
    }
