"""Which Spark worker ran each application's tasks, read from Spark's own event logs, so that a
run on several workers shows that every one of them worked instead of claiming it."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit


def tasks_per_worker(event_dir: Path, worker_ports: dict[int, str]) -> dict[str, dict[str, int]]:
    """{application name: {worker name: finished tasks}}. An executor is placed on its worker by
    the port of its log URLs (every standalone worker serves its executors' logs on its own UI
    port); `worker_ports` names those ports. Applications of the same name are added up."""
    spread: dict[str, Counter] = {}
    for path in sorted(Path(event_dir).iterdir()):
        app, executors, counts = path.name, {}, Counter()
        for line in _lines(path):
            if line.strip():
                event = json.loads(line)
                kind = event.get("Event")
                if kind == "SparkListenerApplicationStart":
                    app = event["App Name"]
                elif kind == "SparkListenerExecutorAdded":
                    urls = event["Executor Info"].get("Log Urls") or {}
                    port = urlsplit(next(iter(urls.values()), "")).port
                    executors[event["Executor ID"]] = worker_ports.get(port, f"unknown worker (port {port})")
                elif kind == "SparkListenerTaskEnd":
                    executor = event["Task Info"]["Executor ID"]
                    counts[executors.get(executor, f"executor {executor}")] += 1
        spread.setdefault(app, Counter()).update(counts)
    return {app: dict(sorted(counts.items())) for app, counts in spread.items()}


def _lines(path: Path):
    """One application's events: a file, or (Spark 4's rolling logs) a folder of event files."""
    files = sorted(path.glob("events_*"), key=lambda f: int(f.name.split("_")[1])) if path.is_dir() else [path]
    for file in files:
        with file.open() as lines:
            yield from lines


def totals(spread: dict[str, dict[str, int]]) -> dict[str, int]:
    total: Counter = Counter()
    for counts in spread.values():
        total.update(counts)
    return dict(sorted(total.items()))
