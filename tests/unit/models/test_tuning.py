"""The search's bookkeeping: its grid, the budget, the best trial per model, failed trials."""

import time

import pytest

from movielens_recs.models.params import AlsParams
from movielens_recs.models.tuning import GRIDS, search, trials


def test_every_trial_changes_only_its_own_models_params():
    for mode in ("quick", "full"):
        grid = trials(mode)
        assert len(grid) == sum(len(list(__import__("itertools").product(*g.values()))) for g in GRIDS[mode].values())
        for trial in grid:
            assert all(k.startswith("ranking_") == (trial.model == "ranking") for k in trial.changes), trial
            AlsParams().replace(**trial.changes)  # every grid point is a valid params set
    with pytest.raises(ValueError, match="tuning mode"):
        trials("off")


def test_best_params_take_the_lowest_rmse_and_the_highest_ndcg():
    def measure(model, params):
        if model == "rating":
            return abs(params.rank - 20) / 100 + params.reg_param  # best: rank 20, reg 0.1
        return params.ranking_rank / 100 + (0.5 if params.ranking_alpha == 1.0 else 0.0)  # best: 64, 1.0

    result = search(AlsParams(split_salt="kept"), "quick", measure, budget_seconds=60)
    best = result["best_params"]
    assert (best["rank"], best["reg_param"], best["ranking_rank"], best["ranking_alpha"]) == (20, 0.1, 64, 1.0)
    assert best["split_salt"] == "kept", "what the grid does not search stays as given"
    assert [t["status"] for t in result["trials"]] == ["done"] * len(trials("quick"))
    assert result["best"]["rating"]["score"] == pytest.approx(0.1)


def test_no_trial_starts_once_the_budget_is_spent_and_a_failed_trial_loses_nothing_else():
    calls = []

    def measure(model, params):
        calls.append(model)
        if model == "rating" and (params.rank, params.reg_param) == (10, 0.2):
            raise RuntimeError("executor lost")
        time.sleep(0.05)
        return 1.0

    # rating trials in grid order: (10, 0.1) 50 ms, (10, 0.2) fails, (20, 0.1) 50 ms; then 100 ms are spent
    result = search(AlsParams(), "quick", measure, budget_seconds=0.08)
    statuses = [t["status"] for t in result["trials"]]
    assert statuses == ["done", "failed", "done"] + ["skipped"] * (len(statuses) - 3)
    assert len(calls) == 3
    assert "executor lost" in result["trials"][1]["reason"]
    assert "budget of 0 s spent" in result["trials"][-1]["reason"]
    assert result["best"]["ranking"] is None and result["best_params"]["ranking_rank"] == AlsParams().ranking_rank
