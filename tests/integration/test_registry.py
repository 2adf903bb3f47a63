"""The model registry on the real PostgreSQL of the local stack, each test in its own schema."""

from datetime import datetime, timezone

import psycopg
import pytest

from movielens_recs import registry
from movielens_recs.lifecycle import older_than_champion
from movielens_recs.registry import ModelRecord, RegistryError


def add(conn, model_id, dataset="ml-x", cutoff=None):
    registry.register(conn, ModelRecord(model_id, dataset, "snap", f"file:///models/{model_id}", {"rank": 10}, cutoff=cutoff))
    registry.record_metrics(conn, model_id, {"k": 10, "model": {"rmse": 0.9, "ndcg_at_k": 0.1}})


def status(conn, model_id):
    return registry.get(conn, model_id)["status"]


def test_first_promotion_and_then_a_replacement(conn):
    add(conn, "a")
    assert registry.promote(conn, "a", {"promote": True}, expected_champion=None) is None
    add(conn, "b")
    assert registry.promote(conn, "b", {"promote": True}, expected_champion="a") == "a"
    assert (status(conn, "a"), status(conn, "b")) == ("retired", "champion")
    assert registry.champion(conn, "ml-x")["model_id"] == "b"
    assert registry.get(conn, "a")["retired_at"] is not None


def test_the_database_refuses_a_second_champion(conn):
    add(conn, "a")
    add(conn, "b")
    registry.promote(conn, "a", {}, expected_champion=None)
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("UPDATE model_registry SET status = 'champion' WHERE model_id = 'b'")
    add(conn, "other-dataset", dataset="ml-y")
    registry.promote(conn, "other-dataset", {}, expected_champion=None)  # each dataset has its own


def test_a_failure_during_promotion_leaves_the_old_champion(conn):
    add(conn, "old")
    registry.promote(conn, "old", {}, expected_champion=None)
    add(conn, "new")
    # make the database fail the promotion after the old champion was already retired
    conn.execute("""
        CREATE FUNCTION refuse_new() RETURNS trigger AS $$
        BEGIN
          IF NEW.model_id = 'new' AND NEW.status = 'champion' THEN RAISE EXCEPTION 'injected failure'; END IF;
          RETURN NEW;
        END $$ LANGUAGE plpgsql;
        CREATE TRIGGER refuse_new BEFORE UPDATE ON model_registry FOR EACH ROW EXECUTE FUNCTION refuse_new();
    """)
    with pytest.raises(psycopg.errors.RaiseException, match="injected failure"):
        registry.promote(conn, "new", {}, expected_champion="old")
    assert (status(conn, "old"), status(conn, "new")) == ("champion", "candidate")


def test_stale_comparison_is_refused(conn):
    add(conn, "a")
    add(conn, "b")
    registry.promote(conn, "a", {}, expected_champion=None)
    with pytest.raises(RegistryError, match="changed from None to a"):
        registry.promote(conn, "b", {}, expected_champion=None)
    assert status(conn, "a") == "champion"


def test_rejection_records_reasons_and_changes_nothing_else(conn):
    add(conn, "a")
    registry.promote(conn, "a", {}, expected_champion=None)
    add(conn, "b")
    registry.reject(conn, "b", {"promote": False, "rules": [{"name": "rmse_ceiling", "passed": False}]})
    assert status(conn, "b") == "rejected" and status(conn, "a") == "champion"
    assert registry.get(conn, "b")["decision"]["rules"][0]["name"] == "rmse_ceiling"


def test_a_decided_model_is_never_trained_over(conn):
    add(conn, "a")
    registry.promote(conn, "a", {}, expected_champion=None)
    with pytest.raises(RegistryError, match="already champion"):
        registry.register(conn, ModelRecord("a", "ml-x", "snap", "file:///elsewhere", {}))
    assert registry.get(conn, "a")["model_uri"] == "file:///models/a"


def test_an_approved_model_is_champion_only_once_promoted_after_publishing(conn):
    add(conn, "a")
    registry.promote(conn, "a", {"promote": True}, expected_champion=None)
    add(conn, "b")
    decision = {"promote": True, "rules": [{"name": "rmse_ceiling", "passed": True}]}
    registry.approve(conn, "b", decision)
    assert (status(conn, "a"), status(conn, "b")) == ("champion", "approved")
    assert registry.champion(conn, "ml-x")["model_id"] == "a", "approved is not served yet"
    assert registry.promote(conn, "b", None, expected_champion="a") == "a"
    assert registry.get(conn, "b")["decision"] == decision, "the gate's decision is kept"
    with pytest.raises(RegistryError, match="no candidate b to mark approved"):
        registry.approve(conn, "b", decision)


def test_an_approved_model_whose_recommendations_fail_is_rejected(conn):
    add(conn, "a")
    registry.approve(conn, "a", {"promote": True})
    registry.reject(conn, "a", {"promote": False, "rules": [{"name": "recommendations_valid", "passed": False}]})
    assert status(conn, "a") == "rejected" and registry.champion(conn, "ml-x") is None


def test_a_registry_from_an_earlier_version_is_migrated(conn):
    conn.execute("ALTER TABLE model_registry DROP COLUMN cutoff, DROP COLUMN training_rows")
    conn.execute("ALTER TABLE model_registry DROP CONSTRAINT model_registry_status_check")
    conn.execute("ALTER TABLE model_registry ADD CONSTRAINT model_registry_status_check "
                 "CHECK (status IN ('candidate', 'champion', 'rejected', 'retired'))")
    conn.execute("INSERT INTO model_registry (model_id, dataset, snapshot_id, model_uri) VALUES ('a', 'ml-x', 's', 'u')")
    with pytest.raises(psycopg.errors.CheckViolation):
        registry.approve(conn, "a", {})
    registry.ensure_schema(conn)
    registry.approve(conn, "a", {})
    assert status(conn, "a") == "approved"


def day(d):
    return datetime(2018, 6, d, tzinfo=timezone.utc)


def test_an_older_model_never_replaces_a_newer_champion(conn):
    add(conn, "june-10", cutoff=day(10))
    registry.promote(conn, "june-10", {}, expected_champion=None)
    add(conn, "june-3", cutoff=day(3))
    assert older_than_champion(registry.get(conn, "june-3"), registry.champion(conn, "ml-x"))
    with pytest.raises(RegistryError, match="an older model never replaces a newer one"):
        registry.promote(conn, "june-3", {}, expected_champion="june-10")
    registry.mark_historical(conn, "june-3", {"promote": False})
    assert (status(conn, "june-10"), status(conn, "june-3")) == ("champion", "historical")
    add(conn, "june-11", cutoff=day(11))
    assert not older_than_champion(registry.get(conn, "june-11"), registry.champion(conn, "ml-x"))


def test_a_decided_model_says_so_when_its_run_is_repeated(conn):
    add(conn, "a", cutoff=day(1))
    registry.promote(conn, "a", {}, expected_champion=None)
    with pytest.raises(registry.AlreadyDecided, match="already champion"):
        add(conn, "a", cutoff=day(1))
    add(conn, "b", cutoff=day(2))
    registry.approve(conn, "b", {})
    add(conn, "b", cutoff=day(2))  # approved but never published: a rerun starts it again
    assert status(conn, "b") == "candidate"


def test_publication_lock_serializes_runs(conn, stack):
    import threading
    import time

    order = []
    with psycopg.connect(stack.postgres_dsn(), autocommit=True) as other:
        def second():
            with registry.publication_lock(other, "ml-x"):
                order.append("second")

        with registry.publication_lock(conn, "ml-x"):
            thread = threading.Thread(target=second)
            thread.start()
            try:
                # the second session is seen waiting on the advisory lock, having done nothing
                deadline = time.monotonic() + 30
                while conn.execute("SELECT wait_event FROM pg_stat_activity WHERE pid = %s",
                                   (other.info.backend_pid,)).fetchone()[0] != "advisory":
                    assert not order and time.monotonic() < deadline, f"the second publisher did not wait: {order}"
                    time.sleep(0.01)
                assert order == []
            finally:
                order.append("first done")
        thread.join(timeout=10)
    assert order == ["first done", "second"]


def test_the_newest_tuning_run_gives_the_datasets_params(conn):
    assert registry.tuned(conn, "ml-x") is None
    registry.record_tuning(conn, "ml-x", "quick", {"rank": 20}, {"trials": [1]})
    newest = registry.record_tuning(conn, "ml-x", "full", {"rank": 40}, {"trials": [1, 2]}, dag_run_id="r")
    registry.record_tuning(conn, "ml-y", "quick", {"rank": 5}, {"trials": []})
    found = registry.tuned(conn, "ml-x")
    assert (found["id"], found["mode"], found["best_params"], found["dag_run_id"]) == (newest, "full", {"rank": 40}, "r")
    # prepare_model rerun for the same DAG run records its search again: still one row
    again = registry.record_tuning(conn, "ml-x", "full", {"rank": 40}, {"trials": [1, 2]}, dag_run_id="r")
    assert again == newest
    assert conn.execute("SELECT count(*) FROM tuning_runs WHERE dataset = 'ml-x'").fetchone()[0] == 2
