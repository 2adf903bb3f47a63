"""The promotion rules, one case per outcome the issue names."""

import pytest

from movielens_recs.gate import GateConfig, decide


def metrics(rmse=0.87, ndcg=0.20, baseline_ndcg=0.10, champion_rmse=None, k=10):
    m = {"k": k, "model": {"rmse": rmse, "ndcg_at_k": ndcg}, "baseline": {"ndcg_at_k": baseline_ndcg},
         "champion_on_test": None}
    if champion_rmse is not None:
        m["champion_on_test"] = {"model_id": "old", "rmse": champion_rmse}
    return m


CONFIG = GateConfig.for_dataset("ml-latest-small", require_beat_baseline=True)


def _rule(decision, name):
    return next(r for r in decision.rules if r.name == name)


def test_defaults_per_dataset():
    default = GateConfig.for_dataset("ml-latest-small")
    assert default.rmse_ceiling == 0.90 and default.champion_tolerance == 0.01
    assert default.require_beat_baseline is False  # see gate.py for the measurement behind it
    assert GateConfig.for_dataset("ml-test-unknown").rmse_ceiling == 1.0
    assert GateConfig.for_dataset("ml-latest-small", rmse_ceiling=0.5).rmse_ceiling == 0.5


def test_promotes_with_no_champion_on_absolute_rules():
    d = decide(metrics(), CONFIG)
    assert d.promote
    assert _rule(d, "no_regression").passed and "no champion" in _rule(d, "no_regression").detail


def test_promotes_over_a_worse_champion():
    d = decide(metrics(rmse=0.87, champion_rmse=0.95), CONFIG)
    assert d.promote and _rule(d, "no_regression").threshold == pytest.approx(0.95 * 1.01)


def test_within_tolerance_of_the_champion_still_promotes():
    assert decide(metrics(rmse=0.8750, champion_rmse=0.8700), CONFIG).promote  # +0.57% < 1%


def test_rejects_above_the_absolute_ceiling():
    d = decide(metrics(rmse=0.91), CONFIG)
    assert not d.promote
    rule = _rule(d, "rmse_ceiling")
    assert not rule.passed and rule.value == 0.91 and rule.threshold == 0.90


def test_rejects_regression_beyond_tolerance():
    d = decide(metrics(rmse=0.885, champion_rmse=0.870), CONFIG)  # +1.7%
    assert not d.promote
    assert not _rule(d, "no_regression").passed and _rule(d, "rmse_ceiling").passed


def test_rejects_under_the_popularity_baseline():
    d = decide(metrics(ndcg=0.05, baseline_ndcg=0.10), CONFIG)
    assert not d.promote and not _rule(d, "beats_popularity").passed


def test_baseline_rule_can_be_switched_off_and_says_so():
    config = GateConfig.for_dataset("ml-latest-small", require_beat_baseline=False)
    d = decide(metrics(ndcg=0.05, baseline_ndcg=0.10), config)
    assert d.promote
    rule = _rule(d, "beats_popularity")
    assert rule.passed and "not enforced" in rule.detail
    assert d.as_dict()["config"]["require_beat_baseline"] is False


def test_explanation_lists_every_rule_with_value_and_threshold():
    text = decide(metrics(rmse=0.91), CONFIG).explain()
    assert text.startswith("gate: REJECT")
    assert "FAIL  rmse_ceiling" in text and "0.9100" in text and "0.9000" in text
    assert "no_regression" in text and "beats_popularity" in text


def test_dag_params_win_over_settings_which_win_over_defaults():
    from movielens_recs.orchestration.modeling import gate_config

    env = {"MLRECS_GATE_RMSE_CEILING": "0.8", "MLRECS_GATE_REQUIRE_BEAT_BASELINE": "true"}
    assert gate_config("ml-latest-small", {}, env).rmse_ceiling == 0.8
    assert gate_config("ml-latest-small", {}, env).require_beat_baseline is True
    assert gate_config("ml-latest-small", {"rmse_ceiling": 0.85, "require_beat_baseline": False}, env) == GateConfig(0.85, 0.01, False)
    assert gate_config("ml-latest-small", {}, {}) == GateConfig(0.90, 0.01, False)


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
