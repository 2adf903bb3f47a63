"""PostgreSQL and S3 kept in step (publish/sinks.py) on the stack's real stores: a failure in one
sink never leaves readers of the two sinks on different versions, and a rerun finishes the job.
The failures are real ones: the apps' read-only S3 identity is refused every write."""

import uuid
from datetime import datetime, timezone

import pytest

from movielens_recs import lifecycle, registry
from mlrecs_devkit.stack import BUCKET
from movielens_recs.gate import GateConfig
from movielens_recs.publish import s3
from movielens_recs.publish import sinks
from movielens_recs.registry import ModelRecord
from tests.integration.test_lifecycle import metrics
from tests.publish_fixtures import NOW, cold, recs


@pytest.fixture
def prefix():
    return f"tests/sinks-{uuid.uuid4().hex[:8]}"


def both(conn, stack, prefix, identity="pipeline"):
    return [sinks.PostgresSink(conn, "test", keep=3), sinks.S3Sink(stack.s3_client(identity), BUCKET, prefix)]


def served(targets):
    return [sink.served() for sink in targets]


def publish(targets, version, seed):
    return sinks.publish(targets, version, recs(20, seed), cold(seed), NOW)


def test_a_second_sink_that_fails_switches_the_first_back(conn, stack, prefix):
    publish(both(conn, stack, prefix), "m-1", 1)
    # S3 refuses the write after PostgreSQL has switched to m-2
    with pytest.raises(sinks.SinkError, match=r"s3 \(s3://mlrecs/tests/sinks-.*\) failed at m-2: .*AccessDenied.*"
                                              r"postgres switched back to m-1"):
        publish(both(conn, stack, prefix, identity="reader"), "m-2", 2)
    assert served(both(conn, stack, prefix)) == ["m-1", "m-1"]
    assert conn.execute("SELECT DISTINCT model_version FROM recommendations").fetchall() == [("m-1",)]
    # the rerun does the whole job
    publish(both(conn, stack, prefix), "m-2", 2)
    assert served(both(conn, stack, prefix)) == ["m-2", "m-2"]


def test_republishing_the_served_version_writes_nothing(conn, stack, prefix):
    targets = both(conn, stack, prefix)
    publish(targets, "m-1", 1)
    puts = []
    targets[1].client.meta.events.register("before-parameter-build.s3.PutObject", lambda params, **_: puts.append(params["Key"]))
    again = publish(targets, "m-1", 1)
    assert [r["already_current"] for r in again] == [True, True] and puts == []


def test_rollback_is_refused_when_one_sink_lacks_the_target(conn, stack, prefix):
    targets = both(conn, stack, prefix)
    publish(targets, "m-1", 1)
    publish(targets, "m-2", 2)
    # S3 lost a file of m-1: no sink may move
    lost = s3.version_prefix(prefix, "m-1") + "/recommendations.parquet"
    targets[1].client.delete_object(Bucket=BUCKET, Key=lost)
    with pytest.raises(sinks.SinkError, match="s3 .* cannot serve m-1: a file of model version m-1 is missing.*"
                                              "nothing was changed"):
        sinks.rollback(targets)
    assert served(targets) == ["m-2", "m-2"]
    # and a version one sink never had
    sinks.publish(targets[:1], "m-3", recs(20, 3), cold(3), NOW)
    with pytest.raises(sinks.SinkError, match="s3 .* cannot serve m-3: model version m-3 was never published"):
        sinks.rollback(targets, "m-3")
    assert served(targets) == ["m-3", "m-2"]


def test_rolling_back_twice_goes_two_versions_back_in_both_sinks(conn, stack, prefix):
    targets = both(conn, stack, prefix)
    for seed in (1, 2, 3):
        publish(targets, f"m-{seed}", seed)
    assert sinks.rollback(targets) == "m-2" and served(targets) == ["m-2", "m-2"]
    assert sinks.rollback(targets) == "m-1" and served(targets) == ["m-1", "m-1"]
    with pytest.raises(sinks.SinkError, match="no earlier version"):
        sinks.rollback(targets)


def test_a_rollback_that_fails_in_the_second_sink_is_undone_in_the_first(conn, stack, prefix):
    publish(both(conn, stack, prefix), "m-1", 1)
    publish(both(conn, stack, prefix), "m-2", 2)
    # the reader identity can check m-1 (it may read it) but not switch the manifest
    with pytest.raises(sinks.SinkError, match="s3 .* failed at m-1: .*AccessDenied.*postgres switched back to m-2"):
        sinks.rollback(both(conn, stack, prefix, identity="reader"))
    assert served(both(conn, stack, prefix)) == ["m-2", "m-2"]


def test_split_sinks_are_flagged_and_rollback_asks_which_version(conn, stack, prefix):
    targets = both(conn, stack, prefix)
    publish(targets, "m-1", 1)
    publish(targets, "m-2", 2)
    s3.switch(targets[1].client, BUCKET, prefix, "m-1")
    assert sinks.check(targets, None) == ["the sinks serve different versions: postgres m-2, s3 m-1"]
    with pytest.raises(sinks.SinkError, match="serve different versions .*choose the version to serve with --to"):
        sinks.rollback(targets)
    assert sinks.rollback(targets, "m-1") == "m-1" and sinks.check(targets, None) == []


def test_a_sink_that_lost_its_data_is_flagged_against_the_champion(conn, stack, prefix):
    targets = both(conn, stack, prefix)
    publish(targets, "m-1", 1)
    assert sinks.check(targets, "m-1") == []
    listed = targets[1].client.list_objects_v2(Bucket=BUCKET, Prefix=prefix + "/")["Contents"]
    targets[1].client.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": o["Key"]} for o in listed]})
    assert sinks.check(targets, "m-1") == [
        f"s3 (s3://mlrecs/{prefix}/recommendations/_manifest.json) serves nothing, not the champion m-1"]
    # publishing the champion again (a rerun of its publish task) restores it
    publish(targets, "m-1", 1)
    assert sinks.check(targets, "m-1") == []


def test_a_failed_publish_keeps_the_champion_and_what_readers_see_and_a_rerun_crowns(conn, stack, prefix):
    config = GateConfig.for_dataset("ml-latest-small")

    def approved(model_id, day):
        lifecycle.register(conn, ModelRecord(model_id, "ml-x", "snap", f"file:///m/{model_id}", {},
                                             cutoff=datetime(2018, 6, day, tzinfo=timezone.utc)))
        assert lifecycle.judge(conn, model_id, metrics(), config).status == "approved"

    approved("a", 1)
    lifecycle.publish_and_crown(conn, "a", None, lambda: publish(both(conn, stack, prefix), "a", 1))
    approved("b", 2)
    with pytest.raises(sinks.SinkError, match="postgres switched back to a"):
        lifecycle.publish_and_crown(conn, "b", "a", lambda: publish(both(conn, stack, prefix, "reader"), "b", 2))
    assert registry.champion(conn, "ml-x")["model_id"] == "a" and registry.get(conn, "b")["status"] == "approved"
    assert served(both(conn, stack, prefix)) == ["a", "a"]

    outcome = lifecycle.publish_and_crown(conn, "b", "a", lambda: publish(both(conn, stack, prefix), "b", 2))
    assert outcome.status == "champion" and served(both(conn, stack, prefix)) == ["b", "b"]
    assert sinks.check(both(conn, stack, prefix), registry.champion(conn, "ml-x")["model_id"]) == []
