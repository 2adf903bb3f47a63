"""The executor watch of jobs.py on a stand-in SparkContext whose executors come and go."""

import time

import pytest

from movielens_recs import jobs


class FakeContext:
    """What jobs.py reads of a SparkContext: its master, name, conf and the status tracker's executors."""

    def __init__(self, executors: int):
        self.master, self.appName, self.count, self.stopped = "spark://127.0.0.1:7077", "train-m", executors, False
        tracker = type("Tracker", (), {"getExecutorInfos": lambda _: ["driver"] + ["executor"] * self.count})()
        scala = type("Scala", (), {"statusTracker": lambda _: tracker})()
        self._jsc = type("Java", (), {"sc": lambda _: scala})()

    def getConf(self):
        return type("Conf", (), {"get": lambda _, key, default=None: {"spark.executor.cores": "2",
                                                                      "spark.executor.memory": "4g"}.get(key, default)})()

    def stop(self):
        self.stopped, self._jsc = True, None


def test_no_executor_at_the_start_fails_naming_the_master_and_the_request():
    with pytest.raises(jobs.NoExecutors, match=r"no executor registered with spark://127.0.0.1:7077 within 0.2 s "
                                               r"for train-m: it asked for executors of 2 cores and 4g of memory "
                                               r"\(\+ the default overhead\)"):
        jobs.await_executors(FakeContext(0), timeout=0.2, poll=0.05)
    assert jobs.await_executors(FakeContext(2), timeout=0.2) == 2


def test_losing_every_executor_stops_the_job_after_the_wait_unless_one_comes_back(caplog):
    sc = FakeContext(1)
    watch = jobs.watch_executors(sc, timeout=0.3, poll=0.05)
    sc.count = 0
    time.sleep(0.15)
    sc.count = 1  # back within the wait: the job goes on
    time.sleep(0.4)
    assert not sc.stopped and watch.is_alive()
    sc.count = 0
    watch.join(timeout=5)
    assert sc.stopped and "no executor has been registered with spark://127.0.0.1:7077 for 0.3 s" in caplog.text


def test_a_local_session_has_nothing_to_wait_for():
    sc = FakeContext(0)
    sc.master = "local[2]"
    assert jobs.await_executors(sc, timeout=0) == 0 and jobs.watch_executors(sc, timeout=0) is None


class FakeSession:
    """What spread_over_cores touches of a SparkSession: its runtime conf and the cores it has."""

    def __init__(self, cores: int, conf: dict):
        self.sparkContext = type("Context", (), {"defaultParallelism": cores})()
        self.values = dict(conf)
        self.conf = type("Conf", (), {"get": lambda _, key, default=None: self.values.get(key, default),
                                      "set": lambda _, key, value: self.values.__setitem__(key, value),
                                      "unset": lambda _, key: self.values.pop(key)})()


def test_spread_over_cores_asks_two_tasks_a_core_then_gives_the_session_back_its_settings():
    session = FakeSession(cores=2, conf={"spark.sql.files.minPartitionNum": "3", "other": "x"})
    with pytest.raises(RuntimeError):
        with jobs.spread_over_cores(session, training_rows=jobs.SPREAD_FROM_TRAINING_ROWS):
            assert {key: session.values[key] for key in jobs.SPREAD_CONFS} == dict.fromkeys(jobs.SPREAD_CONFS, "4")
            raise RuntimeError("the job failed inside")
    assert session.values == {"spark.sql.files.minPartitionNum": "3", "other": "x"}


@pytest.mark.parametrize("training_rows, spread", [(jobs.SPREAD_FROM_TRAINING_ROWS - 1, False),
                                                   (80_508, False), (20_000_000, True), (None, True)])
def test_only_models_trained_on_many_ratings_are_spread(training_rows, spread):
    session = FakeSession(cores=2, conf={})
    with jobs.spread_over_cores(session, training_rows):
        assert session.values == (dict.fromkeys(jobs.SPREAD_CONFS, "4") if spread else {})
    assert session.values == {}


def test_the_models_training_rows_come_from_its_metadata(tmp_path):
    from movielens_recs.lake.filesystem import write_json
    from movielens_recs.models.run import training_rows
    from movielens_recs.models.store import ModelLayout

    layout = ModelLayout(str(tmp_path / "m1"))
    assert training_rows(layout) is None
    write_json(layout.metadata, {"model_id": "m1", "rows": {"train": 80_508, "test": 20_328}})
    assert training_rows(layout) == 80_508
