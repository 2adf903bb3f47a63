"""The model lifecycle (register, judge, publish-and-crown, reject) on the real PostgreSQL, with
no Airflow: each step's outcome and what it leaves in the registry."""

from datetime import datetime, timezone

import pytest

from movielens_recs import lifecycle, registry
from movielens_recs.gate import GateConfig
from movielens_recs.registry import ModelRecord

CONFIG = GateConfig.for_dataset("ml-latest-small")


def day(d):
    return datetime(2018, 6, d, tzinfo=timezone.utc)


def metrics(rmse=0.859, ndcg=0.35, fair=None):
    return {"k": 10, "model": {"rmse": rmse, "mae": 0.66, "ndcg_at_k": ndcg, "ndcg_at_k_liked": 0.3, "coverage": 0.08,
                               "precision_at_k": 0.1, "recall_at_k": 0.1, "map_at_k": 0.1},
            "bias": {"rmse": 0.871, "mae": 0.67},
            "popularity": {"ndcg_at_k": 0.19, "ndcg_at_k_liked": 0.17, "coverage": 0.006, "precision_at_k": 0.1,
                           "recall_at_k": 0.1, "map_at_k": 0.1},
            "ratios": {"rmse_vs_bias": rmse / 0.871, "mae_vs_bias": 0.99, "ndcg_vs_popularity": ndcg / 0.19,
                       "ndcg_liked_vs_popularity": 1.8},
            "fair": fair}


def register(conn, model_id, cutoff):
    return lifecycle.register(conn, ModelRecord(model_id, "ml-x", "snap", f"file:///m/{model_id}", {}, cutoff=cutoff))


def crowned(conn, model_id, cutoff=day(10)):
    register(conn, model_id, cutoff)
    assert lifecycle.judge(conn, model_id, metrics(), CONFIG).status == "approved"
    outcome = lifecycle.publish_and_crown(conn, model_id, None, lambda: [{"sink": "test"}])
    assert (outcome.status, outcome.proceed, outcome.details["published"]) == ("champion", True, [{"sink": "test"}])


def status(conn, model_id):
    return registry.get(conn, model_id)["status"]


def test_register_names_the_champion_and_a_decided_model_is_not_trained_again(conn):
    first = register(conn, "a", day(10))
    assert (first.status, first.proceed, first.details["champion"]) == ("candidate", True, None)
    lifecycle.judge(conn, "a", metrics(), CONFIG)
    lifecycle.publish_and_crown(conn, "a", None, lambda: [])
    again = register(conn, "a", day(10))
    assert (again.status, again.proceed) == ("decided", False) and "already champion" in again.message
    other = register(conn, "b", day(11))
    assert other.details["champion"]["model_id"] == "a"


def test_a_rejection_notifies_and_changes_nothing(conn):
    crowned(conn, "a")
    register(conn, "b", day(11))
    outcome = lifecycle.judge(conn, "b", metrics(ndcg=0.2), CONFIG)
    assert (outcome.status, outcome.proceed, outcome.notify) == ("rejected", False, True)
    assert outcome.message.startswith("model b rejected by the gate; champion unchanged")
    assert "FAIL  beats_popularity" in outcome.message
    assert (status(conn, "a"), status(conn, "b")) == ("champion", "rejected")
    assert registry.get(conn, "b")["metrics"]["model"]["ndcg_at_k"] == 0.2


def test_a_backfills_model_is_historical_whatever_its_metrics(conn):
    crowned(conn, "june-10", day(10))
    register(conn, "june-3", day(3))
    outcome = lifecycle.judge(conn, "june-3", metrics(), CONFIG)
    assert (outcome.status, outcome.proceed, outcome.notify) == ("historical", False, False)
    failed = [r["name"] for r in registry.get(conn, "june-3")["decision"]["rules"] if not r["passed"]]
    assert failed == ["not_older_than_champion"]


def test_a_champion_promoted_meanwhile_stops_the_publication(conn):
    crowned(conn, "a", day(10))
    register(conn, "b", day(11))
    register(conn, "c", day(12))
    lifecycle.judge(conn, "b", metrics(), CONFIG)
    lifecycle.judge(conn, "c", metrics(), CONFIG)
    assert lifecycle.publish_and_crown(conn, "c", "a", lambda: []).status == "champion"
    published = []
    outcome = lifecycle.publish_and_crown(conn, "b", "a", lambda: published.append("b") or [])
    # b was trained on data older than c's: historical, and nothing was published
    assert (outcome.status, outcome.proceed, published) == ("historical", False, [])
    register(conn, "d", day(13))
    lifecycle.judge(conn, "d", metrics(), CONFIG)
    outcome = lifecycle.publish_and_crown(conn, "d", "a", lambda: published.append("d") or [])
    # d is newer, but it was measured against a, not against c
    assert (outcome.status, outcome.notify, published) == ("rejected", True, [])
    assert "the champion changed from a to c" in outcome.message
    assert registry.champion(conn, "ml-x")["model_id"] == "c"


def test_a_failed_publish_leaves_the_registry_and_a_rerun_finishes_it(conn):
    crowned(conn, "a")
    register(conn, "b", day(11))
    lifecycle.judge(conn, "b", metrics(), CONFIG)

    def broken():
        raise ConnectionError("S3 is down")

    with pytest.raises(ConnectionError):
        lifecycle.publish_and_crown(conn, "b", "a", broken)
    assert (status(conn, "a"), status(conn, "b")) == ("champion", "approved")
    outcome = lifecycle.publish_and_crown(conn, "b", "a", lambda: ["both sinks"])
    assert (outcome.status, outcome.details["retired"]) == ("champion", "a")
    # a rerun after the promotion publishes again (every sink catches up) and changes nothing else
    again = lifecycle.publish_and_crown(conn, "b", "a", lambda: ["again"])
    assert (again.status, again.details["published"]) == ("champion", ["again"])
    assert status(conn, "a") == "retired"


def test_a_model_that_is_not_approved_is_never_published(conn):
    register(conn, "a", day(10))
    outcome = lifecycle.publish_and_crown(conn, "a", None, lambda: pytest.fail("published a candidate"))
    assert (outcome.status, outcome.proceed) == ("candidate", False)


def test_bad_recommendations_reject_the_model_and_keep_the_gates_rules(conn):
    register(conn, "a", day(10))
    lifecycle.judge(conn, "a", metrics(), CONFIG)
    outcome = lifecycle.reject_recommendations(conn, "a", ["3 users missing"], "file:///m/a/recommendations/_validation.json")
    assert (outcome.status, outcome.notify) == ("rejected", True)
    assert "recommendations of a failed validation; model rejected, nothing published" in outcome.message
    rules = [r["name"] for r in registry.get(conn, "a")["decision"]["rules"]]
    assert rules[0] == "rmse_ceiling" and rules[-1] == "recommendations_valid"
