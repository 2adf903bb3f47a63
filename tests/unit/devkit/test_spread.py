"""Tasks per worker from hand-written event logs: the evidence a scale-out benchmark reports."""

import json

from mlrecs_devkit.benchmark.spread import tasks_per_worker, totals


def _log(path, app, executors, tasks):
    events = [{"Event": "SparkListenerApplicationStart", "App Name": app}] if app else []
    events += [{"Event": "SparkListenerExecutorAdded", "Executor ID": eid,
                "Executor Info": {"Host": "127.0.0.1", "Log Urls": {
                    "stdout": f"http://127.0.0.1:{port}/logPage/?appId=a&executorId={eid}&logType=stdout"}}}
               for eid, port in executors.items()]
    events += [{"Event": "SparkListenerTaskEnd", "Task Info": {"Executor ID": eid}} for eid in tasks]
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")


def test_tasks_are_counted_on_the_worker_whose_port_serves_their_executor(tmp_path):
    ports = {4100: "spark-worker", 4200: "spark-worker-2"}
    _log(tmp_path / "app-1", "movielens-train", {"0": 4100, "1": 4200}, ["0", "1", "1", "0", "1"])
    _log(tmp_path / "app-2", "movielens-evaluate", {"0": 4200}, ["0", "0"])
    # Spark 4's rolling event logs: a folder per application, its events split over numbered files
    (tmp_path / "eventlog_v2_app-3").mkdir()
    _log(tmp_path / "eventlog_v2_app-3" / "events_10_app-3", None, {}, ["1", "7"])
    _log(tmp_path / "eventlog_v2_app-3" / "events_2_app-3", "movielens-train", {"0": 4100, "1": 4999}, ["0"])
    (tmp_path / "eventlog_v2_app-3" / "appstatus_app-3").write_text("")
    spread = tasks_per_worker(tmp_path, ports)
    assert spread == {
        "movielens-train": {"spark-worker": 3, "spark-worker-2": 3, "unknown worker (port 4999)": 1, "executor 7": 1},
        "movielens-evaluate": {"spark-worker-2": 2},
    }
    assert totals(spread) == {"executor 7": 1, "spark-worker": 3, "spark-worker-2": 5, "unknown worker (port 4999)": 1}
