"""Peak memory of the processes a DAG run uses, sampled from /proc while it runs.

A stage's memory is spread over several processes: the Airflow task process, the spark-submit
JVM that hosts the driver (client mode), the driver's Python, the executor JVM on the worker and
its Python workers. Each sample sums resident memory per kind of process; a stage's peak is the
largest sum of each kind while that stage ran, and `total` the largest sum over all kinds, which
is what the machine had to hold.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import psutil

KINDS = ("airflow_task", "driver_jvm", "driver_python", "executor_jvm", "executor_python")


def kind_of(proc: psutil.Process, parent_kind: str | None) -> str | None:
    """Which part of a run a process is, from its command line and its parent's kind."""
    cmdline = " ".join(proc.cmdline())
    if "CoarseGrainedExecutorBackend" in cmdline:
        return "executor_jvm"
    if "org.apache.spark.deploy.SparkSubmit" in cmdline:
        return "driver_jvm"
    if parent_kind in ("executor_jvm", "executor_python"):
        return "executor_python"
    if parent_kind in ("driver_jvm", "driver_python"):
        return "driver_python"
    if parent_kind is not None:
        return "airflow_task"
    return None


def snapshot(roots: list[int]) -> dict[str, int]:
    """Resident bytes per kind over the process trees under `roots` (the DAG run, the Spark worker)."""
    totals = dict.fromkeys(KINDS, 0)
    stack: list[tuple[int, str | None]] = [(pid, None) for pid in roots]
    while stack:
        pid, parent_kind = stack.pop()
        try:
            proc = psutil.Process(pid)
            kind = kind_of(proc, parent_kind) or ("airflow_task" if pid == roots[0] else None)
            if kind:
                totals[kind] += proc.memory_info().rss
            stack += [(child.pid, kind) for child in proc.children()]
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return totals


@dataclass
class MemorySampler:
    """Samples `snapshot(roots())` every `interval` seconds on a thread, between start() and stop()."""

    roots: Callable[[], list[int | None]]
    interval: float = 0.25
    samples: list[tuple[float, dict[str, int]]] = field(default_factory=list)

    def __post_init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="memory-sampler")

    def _run(self) -> None:
        while not self._stop.is_set():
            roots = [pid for pid in self.roots() if pid]
            if roots:
                self.samples.append((time.time(), snapshot(roots)))
            self._stop.wait(self.interval)

    def start(self) -> "MemorySampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def peaks(self, start: float, end: float) -> dict[str, int]:
        """Largest resident bytes of each kind, and of all together, sampled within [start, end]."""
        window = [s for t, s in self.samples if start <= t <= end]
        peaks = {kind: max((s[kind] for s in window), default=0) for kind in KINDS}
        peaks["total"] = max((sum(s.values()) for s in window), default=0)
        return peaks


_OOM = re.compile(r"OutOfMemoryError|GC overhead limit exceeded|exited with code 137|Killed process")


def out_of_memory_lines(paths: list[Path], since: float) -> list[str]:
    """Lines that report an out-of-memory in logs written since `since` (executor stderr, run log)."""
    found = []
    for path in paths:
        try:
            if path.stat().st_mtime < since:
                continue
            with open(path, errors="replace") as fh:
                found += [f"{path}: {line.strip()}" for line in fh if _OOM.search(line)]
        except OSError:
            continue
    return found


def parse_memory(text: str) -> int:
    """Bytes in a JVM/Spark memory setting such as `4g`, `512m`, `2048k`."""
    match = re.fullmatch(r"(\d+)([kmgt]?)b?", text.strip().lower())
    if not match:
        raise ValueError(f"not a memory size: {text!r}")
    return int(match[1]) * 1024 ** " kmgt".index(match[2] or " ")


def container_limit(heap: str, overhead: str | None = None) -> int:
    """What a resource manager (YARN, Kubernetes) lets a Spark JVM hold: its heap plus its
    memory overhead, as configured or Spark's default of max(384 MiB, 10% of the heap)."""
    size = parse_memory(heap)
    return size + (parse_memory(overhead) if overhead else max(384 * 2**20, size // 10))
