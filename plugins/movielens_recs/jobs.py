"""What the spark_jobs/ entry points share: read the cutoff they were given, start a session, write figures.

A session also makes sure the cluster can run the job. A standalone master, YARN or Kubernetes
with no room for an executor would otherwise leave the job waiting ("Initial job has not
accepted any resources") until the task's execution timeout, hours later. Instead the job fails
within `spark.mlrecs.executorWaitSeconds` (MLRECS_SPARK_EXECUTOR_WAIT_SECONDS), naming the master
and what it asked for. The same limit applies when every executor is lost mid-job.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone

log = logging.getLogger(__name__)

EXECUTOR_WAIT_CONF = "spark.mlrecs.executorWaitSeconds"
DEFAULT_EXECUTOR_WAIT_SECONDS = 120.0


class NoExecutors(RuntimeError):
    """The cluster gave the job no executor within the configured time."""


def parse_cutoff(text: str) -> datetime | None:
    """The model's cutoff as the DAG passes it (an ISO time), in UTC; empty means none."""
    return datetime.fromisoformat(text).astimezone(timezone.utc) if text else None


def start_session(app_name: str, checkpoint_dir: str = ""):
    """The job's SparkSession, once it has an executor; a checkpoint directory lets ALS cut long
    lineages."""
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName(app_name).getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    if checkpoint_dir:
        spark.sparkContext.setCheckpointDir(checkpoint_dir)
    wait = float(spark.conf.get(EXECUTOR_WAIT_CONF, str(DEFAULT_EXECUTOR_WAIT_SECONDS)))
    try:
        await_executors(spark.sparkContext, wait)
    except NoExecutors:
        spark.stop()
        raise
    watch_executors(spark.sparkContext, wait)
    return spark


# What spread_over_cores sets: how many pieces a scan splits into, and how few partitions
# adaptive execution may coalesce a shuffle into.
SPREAD_CONFS = ("spark.sql.files.minPartitionNum", "spark.sql.adaptive.coalescePartitions.minPartitionNum")


# Top-N spreads over the cores only for models trained on at least this many ratings: it pays at
# 25M ratings (20M training; see spread_over_cores) and costs below. `make bench` on 2026-12-07,
# with and without it: at 10M the job took 5.49 s against 4.46 s, the recommend stage 63.8 s
# against 61.8 s; at 1M the stage took 44.9-47.6 s against 40.6 s; on ml-latest-small 36.7-37.9 s
# against 32.7 s. Why the extra tasks cost that much on smaller sets was not profiled.
SPREAD_FROM_TRAINING_ROWS = 15_000_000


@contextmanager
def spread_over_cores(spark, training_rows: int | None, tasks_per_core: int = 2):
    """At least `tasks_per_core` tasks per executor core for what runs inside, for CPU-bound
    stages such as top-N scoring. Left to Spark, 25M ratings were read in 3 tasks and their
    shuffles coalesced to 3, on 2 cores: the third task of each stage ran alone (top-N 11.1-11.5 s
    against 8.3-9.3 s with 4). The session's settings come back afterwards. A model trained on
    fewer than SPREAD_FROM_TRAINING_ROWS ratings runs as Spark splits it; one whose size is not
    known (None) is spread."""
    if training_rows is not None and training_rows < SPREAD_FROM_TRAINING_ROWS:
        yield
        return
    wanted = str(tasks_per_core * spark.sparkContext.defaultParallelism)
    before = {key: spark.conf.get(key, None) for key in SPREAD_CONFS}
    for key in SPREAD_CONFS:
        spark.conf.set(key, wanted)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def executors(sc) -> int:
    """Executors registered now; the status tracker lists the driver too."""
    return max(0, len(sc._jsc.sc().statusTracker().getExecutorInfos()) - 1)


def asked_for(sc) -> str:
    conf = sc.getConf()
    cores, memory = conf.get("spark.executor.cores", "1"), conf.get("spark.executor.memory", "1g")
    overhead = conf.get("spark.executor.memoryOverhead", "the default")
    total = conf.get("spark.cores.max")
    return (f"executors of {cores} cores and {memory} of memory (+ {overhead} overhead)"
            + (f", {total} cores in all" if total else ""))


def _local(sc) -> bool:
    return sc.master.startswith("local")


def await_executors(sc, timeout: float, poll: float = 0.5) -> int:
    if _local(sc):
        return 0  # the driver runs the tasks itself
    deadline = time.monotonic() + timeout
    while (count := executors(sc)) == 0:
        if time.monotonic() > deadline:
            raise NoExecutors(f"no executor registered with {sc.master} within {timeout:g} s for "
                              f"{sc.appName}: it asked for {asked_for(sc)}. Is a worker running with that much "
                              f"free? (the wait is MLRECS_SPARK_EXECUTOR_WAIT_SECONDS)")
        time.sleep(poll)
    return count


def watch_executors(sc, timeout: float, poll: float = 2.0) -> threading.Thread | None:
    """A daemon that stops the session when no executor has been left for `timeout` seconds: the
    job's running action fails at once, and the log says why, instead of a wait for a worker
    that may never come back."""
    if _local(sc):
        return None

    def watch():
        lost_since = None
        while sc._jsc is not None:
            try:
                count = executors(sc)
            except Exception:  # the session was stopped meanwhile: nothing left to watch
                return
            if count:
                lost_since = None
            elif lost_since is None:
                lost_since = time.monotonic()
                log.warning("%s lost every executor; it stops in %g s unless one registers", sc.appName, timeout)
            elif time.monotonic() - lost_since > timeout:
                log.error("no executor has been registered with %s for %g s for %s, which asked for %s: "
                          "stopping the job", sc.master, timeout, sc.appName, asked_for(sc))
                sc.stop()
                return
            time.sleep(poll)

    thread = threading.Thread(target=watch, name="executor-watch", daemon=True)
    thread.start()
    return thread

