"""A job the cluster cannot run fails within the configured wait, naming the master and what it
asked for, instead of waiting for the task's execution timeout: submitted with the DAG's settings
to a real standalone master that has no worker."""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from movielens_recs.config import Settings
from movielens_recs.contracts import TrainEvaluateJob
from mlrecs_devkit.stack.core import HOST, _free_port
from movielens_recs.spark_submit import spark_submit_argv


@pytest.fixture
def master_without_workers(stack, tmp_path):
    port, ui = _free_port(), _free_port()
    env = {**os.environ, **stack._spark_env(), "SPARK_LOG_DIR": str(tmp_path)}
    master = subprocess.Popen([stack._spark_class(), "org.apache.spark.deploy.master.Master", "--host", HOST,
                               "--port", str(port), "--webui-port", str(ui)], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://{HOST}:{ui}/json/", timeout=2) as response:
                    state = json.loads(response.read())
                assert state["aliveworkers"] == 0
                break
            except OSError:
                assert time.monotonic() < deadline, "the bare master did not start"
                time.sleep(1)
        with socket.create_connection((HOST, port), timeout=5):
            pass
        yield f"spark://{HOST}:{port}", port
    finally:
        os.killpg(master.pid, signal.SIGTERM)
        master.wait(timeout=30)


def test_a_job_given_no_executor_fails_within_the_wait_and_says_why(stack, stack_env, master_without_workers):
    url, _ = master_without_workers
    env = {**stack_env, "MLRECS_SPARK_EXECUTOR_WAIT_SECONDS": "8", "MLRECS_SPARK_EXECUTOR_MEMORY": "3g"}
    job = TrainEvaluateJob(ratings="file:///nowhere/r", dataset="d", snapshot_id="s", model_id="m",
                           model_uri="file:///nowhere/m", params={})
    argv = spark_submit_argv(Settings.from_env(env), url, job.JOB, job.to_argv())
    started = time.monotonic()
    # without the wait the job would sit there ("Initial job has not accepted any resources")
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180)
    elapsed = time.monotonic() - started
    assert proc.returncode != 0 and elapsed < 90, f"exit {proc.returncode} after {elapsed:.0f} s"
    # spark-submit relays the Python driver's stdout and stderr together on its stdout
    assert (f"NoExecutors: no executor registered with {url} within 8 s for train-evaluate-m: it asked for executors "
            f"of 2 cores and 3g of memory (+ 1g overhead)") in proc.stdout + proc.stderr
