"""Memory sampling for the benchmark: which process is which, peaks per window, OOM reports."""

import os
import subprocess
import sys
import time

import psutil
import pytest

from mlrecs_devkit.benchmark.memory import KINDS, MemorySampler, out_of_memory_lines, parse_memory, snapshot


class FakeProcess:
    def __init__(self, cmdline):
        self._cmdline = cmdline

    def cmdline(self):
        return self._cmdline


@pytest.mark.parametrize("cmdline,parent,kind", [
    (["java", "-Xmx4g", "org.apache.spark.executor.CoarseGrainedExecutorBackend"], None, "executor_jvm"),
    (["java", "-Xmx2g", "org.apache.spark.deploy.SparkSubmit", "job.py"], "airflow_task", "driver_jvm"),
    (["python", "-m", "pyspark.daemon"], "executor_jvm", "executor_python"),
    (["python", "-m", "pyspark.daemon"], "executor_python", "executor_python"),
    (["python", "spark_jobs/train_evaluate.py"], "driver_jvm", "driver_python"),
    (["python", "whatever"], "airflow_task", "airflow_task"),
    (["java", "org.apache.spark.deploy.worker.Worker"], None, None),  # the daemons are not a stage's cost
])
def test_processes_are_told_apart_by_command_line_and_parent(cmdline, parent, kind):
    from mlrecs_devkit.benchmark.memory import kind_of

    assert kind_of(FakeProcess(cmdline), parent) == kind


def test_snapshot_sums_the_tree_under_the_run():
    # a parent standing in for `airflow dags test`, whose child holds ~200 MiB (a tree of its own:
    # the test process may have a Spark JVM under it from other tests)
    hold = "import time; b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(30)"
    parent = subprocess.Popen([sys.executable, "-c",
                               f"import subprocess, sys; subprocess.run([sys.executable, '-c', {hold!r}])"])
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            sizes = snapshot([parent.pid])
            if sizes["airflow_task"] > 200 * 2**20:
                break
            time.sleep(0.2)
        assert set(sizes) == set(KINDS)
        assert sizes["airflow_task"] > 200 * 2**20  # the child's memory counts towards the run
        assert sizes["driver_jvm"] == sizes["executor_jvm"] == 0
    finally:
        for child in psutil.Process(parent.pid).children(recursive=True):
            child.kill()
        parent.kill()
        parent.wait()


def test_peaks_are_taken_within_the_window_only():
    sampler = MemorySampler(roots=lambda: [])
    zero = dict.fromkeys(KINDS, 0)
    sampler.samples = [(1.0, {**zero, "driver_jvm": 5, "executor_jvm": 1}),
                       (2.0, {**zero, "driver_jvm": 3, "executor_jvm": 7}),
                       (3.0, {**zero, "driver_jvm": 100})]
    peaks = sampler.peaks(1.0, 2.5)
    assert peaks["driver_jvm"] == 5 and peaks["executor_jvm"] == 7
    assert peaks["total"] == 10  # the largest sum in one sample, not the sum of the peaks
    assert sampler.peaks(4.0, 5.0)["total"] == 0


def test_the_sampler_thread_samples_until_stopped():
    sampler = MemorySampler(roots=lambda: [os.getpid()], interval=0.05).start()
    time.sleep(0.4)
    sampler.stop()
    count = len(sampler.samples)
    assert count >= 3 and all(s["airflow_task"] > 0 for _, s in sampler.samples)
    time.sleep(0.2)
    assert len(sampler.samples) == count


def test_out_of_memory_is_found_only_in_logs_written_since_the_run_began(tmp_path):
    old, new, clean = tmp_path / "old.log", tmp_path / "stderr", tmp_path / "clean.log"
    old.write_text("java.lang.OutOfMemoryError: Java heap space\n")
    os.utime(old, (0, 0))
    new.write_text("INFO fine\njava.lang.OutOfMemoryError: Java heap space\nWorker: Executor exited with code 137\n")
    clean.write_text("INFO all good\n")
    lines = out_of_memory_lines([old, new, clean, tmp_path / "missing"], since=time.time() - 60)
    assert len(lines) == 2 and all(line.startswith(str(new)) for line in lines)


def test_memory_settings_parse_as_spark_writes_them():
    assert parse_memory("4g") == 4 * 2**30
    assert parse_memory("512m") == 512 * 2**20
    assert parse_memory("2048") == 2048
    with pytest.raises(ValueError):
        parse_memory("lots")


def test_a_jvm_may_hold_its_heap_plus_sparks_default_overhead():
    from mlrecs_devkit.benchmark.memory import container_limit

    assert container_limit("2g") == 2 * 2**30 + 384 * 2**20  # 10% of 2 GiB is below the 384 MiB floor
    assert container_limit("8g") == 8 * 2**30 + 8 * 2**30 // 10
    assert container_limit("4g", "1g") == 5 * 2**30  # a configured overhead wins
