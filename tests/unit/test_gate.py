"""The promotion rules, one case per outcome; no Airflow, no services."""

import pytest

from movielens_recs.config import Settings
from movielens_recs.gate import GateConfig, decide

# ml-latest-small's default split, as measured: the rating model, the ranking model, the baselines
GOOD = dict(rmse=0.859, bias_rmse=0.871, ndcg=0.35, popular_ndcg=0.19, coverage=0.08)


def metrics(rmse=GOOD["rmse"], bias_rmse=GOOD["bias_rmse"], ndcg=GOOD["ndcg"], popular_ndcg=GOOD["popular_ndcg"],
            coverage=GOOD["coverage"], fair=None, k=10):
    return {"k": k, "model": {"rmse": rmse, "ndcg_at_k": ndcg, "coverage": coverage},
            "bias": {"rmse": bias_rmse}, "popularity": {"ndcg_at_k": popular_ndcg}, "fair": fair}


def fair(rmse, ndcg, champion_rmse, champion_ndcg, ratings=4000):
    return {"champion_id": "old", "ratings": ratings, "test_ratings": 20000, "users": 600,
            "candidate": {"rmse": rmse, "ndcg_at_k": ndcg}, "champion": {"rmse": champion_rmse, "ndcg_at_k": champion_ndcg}}


CONFIG = GateConfig.for_dataset("ml-latest-small")
RULES = ["rmse_ceiling", "beats_bias_baseline", "beats_popularity", "catalog_coverage", "no_rating_regression",
         "no_ranking_regression"]


def _rule(decision, name):
    return next(r for r in decision.rules if r.name == name)


def _failed(decision):
    return {r.name for r in decision.rules if not r.passed}


def test_defaults_per_dataset_and_every_rule_on():
    assert CONFIG == GateConfig(rmse_ceiling=0.90, bias_margin=0.005, ndcg_multiple=1.2, coverage_floor=0.02,
                                champion_tolerance=0.01, ranking_tolerance=0.02)
    assert GateConfig.for_dataset("ml-test-unknown").rmse_ceiling == 1.0
    assert GateConfig.for_dataset("ml-latest-small", rmse_ceiling=0.5, ndcg_multiple=None).rmse_ceiling == 0.5
    d = decide(metrics(), CONFIG)
    assert [r.name for r in d.rules] == RULES


def test_the_measured_default_models_pass_with_no_champion():
    d = decide(metrics(), CONFIG)
    assert d.promote, d.explain()
    assert "no champion" in _rule(d, "no_rating_regression").detail


def test_rejects_above_the_absolute_ceiling():
    d = decide(metrics(rmse=0.91, bias_rmse=0.95), CONFIG)
    assert _failed(d) == {"rmse_ceiling"}
    rule = _rule(d, "rmse_ceiling")
    assert rule.value == 0.91 and rule.threshold == 0.90


def test_a_rating_model_no_better_than_the_biases_is_rejected():
    # under the ceiling, but only 0.2% better than per-user and per-movie averages
    d = decide(metrics(rmse=0.869, bias_rmse=0.871), CONFIG)
    assert _failed(d) == {"beats_bias_baseline"}
    assert _rule(d, "beats_bias_baseline").threshold == pytest.approx(0.871 * 0.995)
    assert decide(metrics(rmse=0.866, bias_rmse=0.871), CONFIG).promote  # 0.6% better


def test_a_ranking_model_near_popularity_is_rejected():
    # a rank-1 implicit model, or random scores with a popularity tilt: no better than "most popular"
    d = decide(metrics(ndcg=0.20, popular_ndcg=0.19), CONFIG)
    assert _failed(d) == {"beats_popularity"}
    assert _rule(d, "beats_popularity").threshold == pytest.approx(0.19 * 1.2)


def test_lists_that_show_everyone_the_same_few_movies_are_rejected():
    d = decide(metrics(coverage=0.006), CONFIG)
    assert _failed(d) == {"catalog_coverage"}


def test_a_candidate_as_good_as_the_champion_on_the_fair_set_is_promoted():
    d = decide(metrics(fair=fair(rmse=0.862, ndcg=0.34, champion_rmse=0.860, champion_ndcg=0.345)), CONFIG)
    assert d.promote, d.explain()
    assert "4,000 held-out ratings" in _rule(d, "no_rating_regression").detail


@pytest.mark.parametrize("candidate, failed", [
    (dict(rmse=0.875, ndcg=0.35), "no_rating_regression"),   # 1.7% worse RMSE than the champion
    (dict(rmse=0.860, ndcg=0.30), "no_ranking_regression"),  # 14% lower NDCG than the champion
])
def test_a_candidate_worse_than_the_champion_on_the_fair_set_is_rejected(candidate, failed):
    d = decide(metrics(fair=fair(**candidate, champion_rmse=0.860, champion_ndcg=0.35)), CONFIG)
    assert _failed(d) == {failed}


def test_an_empty_fair_set_is_no_pass():
    empty = {"champion_id": "old", "ratings": 0, "test_ratings": 20000, "users": 0, "candidate": None, "champion": None}
    d = decide(metrics(fair=empty), CONFIG)
    assert _failed(d) == {"no_rating_regression", "no_ranking_regression"}
    assert "cannot compare fairly" in _rule(d, "no_rating_regression").detail


def test_explanation_lists_every_rule_with_value_and_threshold():
    text = decide(metrics(rmse=0.91, bias_rmse=0.95), CONFIG).explain()
    assert text.startswith("gate: REJECT")
    assert "FAIL  rmse_ceiling" in text and "0.9100" in text and "0.9000" in text
    assert all(name in text for name in RULES)


def test_dag_params_win_over_settings_which_win_over_defaults():
    from movielens_recs.orchestration.modeling import gate_config

    settings = Settings.from_env({"MLRECS_GATE_RMSE_CEILING": "0.8", "MLRECS_GATE_NDCG_MULTIPLE": "1.5"})
    assert gate_config("ml-latest-small", {}, settings).rmse_ceiling == 0.8
    assert gate_config("ml-latest-small", {}, settings).ndcg_multiple == 1.5
    assert gate_config("ml-latest-small", {"rmse_ceiling": 0.85, "ndcg_multiple": None}, settings) == \
        GateConfig(0.85, ndcg_multiple=1.5)
    assert gate_config("ml-latest-small", {}, Settings.from_env({})) == CONFIG
    with pytest.raises(ValueError, match="MLRECS_GATE_COVERAGE_FLOOR"):
        Settings.from_env({"MLRECS_GATE_COVERAGE_FLOOR": "a lot"})


def test_a_recorded_decision_overruled_after_the_gate_keeps_its_rules():
    from movielens_recs.gate import overruled

    recorded = {"promote": True, "rules": [{"name": "rmse_ceiling", "passed": True}], "config": {"rmse_ceiling": 0.9}}
    after = overruled(recorded, "recommendations_valid", "3 users missing")
    assert after["promote"] is False and after["config"] == {"rmse_ceiling": 0.9}
    assert [r["name"] for r in after["rules"]] == ["rmse_ceiling", "recommendations_valid"]
    assert after["rules"][-1] == {"name": "recommendations_valid", "passed": False, "value": None,
                                  "threshold": None, "detail": "3 users missing"}
    assert recorded["promote"] is True and len(recorded["rules"]) == 1, "the recorded decision is not modified"
    assert overruled(None, "champion_unchanged", "x")["rules"][0]["name"] == "champion_unchanged"
