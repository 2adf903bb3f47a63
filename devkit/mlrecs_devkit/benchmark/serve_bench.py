"""`make bench-serve`: the recommendations API under load while a publish and a rollback switch
what it serves.

    python -m mlrecs_devkit.benchmark.serve_bench [--users 100000] [--connections 64] [--seconds 30]

A generated set (every user's list derived from the user id and the version, so any answer can
be checked) is published to a namespace of the benchmark's own. The API runs as `make serve`
runs it. wrk (Debian's `wrk`, a C load generator, so the load costs little of the 2 cores the
service needs) requests random users' lists for `--seconds`; a third of the way in, version 2 is
published; two thirds in, a rollback serves version 1 again. Meanwhile a checker requests lists
one at a time and counts any answer whose items do not match one version's list for that user
("mixed"). Results: bench/results/serve-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa

from movielens_recs.config import Settings

DATASET = "bench-serve"
TOP_N = 10
MOVIES = 50_000

_WRK_SCRIPT = """
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/v1/%(dataset)s/users/" .. math.random(1, %(users)d) .. "/recommendations")
end
done = function(summary, latency, requests)
  io.write(string.format('{"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p90_us": %%d, "p99_us": %%d, '
    .. '"max_us": %%d, "errors": {"connect": %%d, "read": %%d, "write": %%d, "status": %%d, "timeout": %%d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status,
    summary.errors.timeout))
end
"""


def movies_for(user_id: int, version: int) -> list[int]:
    return [(user_id * 31 + rank * 7 + version * 13) % MOVIES + 1 for rank in range(1, TOP_N + 1)]


def generated(users: int, version: int) -> tuple[pa.Table, pa.Table]:
    import numpy as np

    user_ids = np.repeat(np.arange(1, users + 1, dtype=np.int32), TOP_N)
    ranks = np.tile(np.arange(1, TOP_N + 1, dtype=np.int16), users)
    movie_ids = ((user_ids.astype(np.int64) * 31 + ranks * 7 + version * 13) % MOVIES + 1).astype(np.int32)
    recs = pa.table({"user_id": user_ids, "rank": ranks, "movie_id": movie_ids,
                     "title": pa.array([f"Movie {m}" for m in movie_ids.tolist()]),
                     "score": pa.array((1.0 / ranks).astype(np.float32)),
                     "predicted_rating": pa.array(np.full(len(ranks), 4.0, dtype=np.float32))})
    cold = pa.table({"rank": pa.array(range(1, TOP_N + 1), pa.int16()), "movie_id": pa.array(range(1, TOP_N + 1), pa.int32()),
                     "title": [f"Movie {i}" for i in range(1, TOP_N + 1)], "score": pa.array([100.0] * TOP_N, pa.float32())})
    return recs, cold


def _checker(url: str, users: int, stop: threading.Event, tally: dict) -> None:
    import random

    while not stop.is_set():
        user_id = random.randint(1, users)
        try:
            with urllib.request.urlopen(f"{url}/v1/{DATASET}/users/{user_id}/recommendations", timeout=10) as r:
                body = json.loads(r.read())
            version = int(body["model_version"].rsplit("-", 1)[1])
            got = [item["movie_id"] for item in body["items"]]
            tally["checked"] += 1
            tally["versions"][body["model_version"]] = tally["versions"].get(body["model_version"], 0) + 1
            if got != movies_for(user_id, version):
                tally["mixed"] += 1
        except Exception as exc:  # noqa: BLE001 - counted: an error is a result of the benchmark
            tally["errors"].append(repr(exc)[:200])


def run(stack, users: int, connections: int, seconds: int, workers: int) -> dict:
    import psycopg

    from mlrecs_devkit.benchmark.publish_bench import drop_schema
    from mlrecs_devkit.stack import PG_READER
    from movielens_recs.publish import sinks
    from movielens_recs.publish.sinks import Namespace

    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    base = f"bench_serve_{uuid.uuid4().hex[:6]}"
    namespace = Namespace(DATASET, base)
    now = datetime.now(timezone.utc)
    conn = psycopg.connect(stack.postgres_dsn(), autocommit=True)
    conn.execute(f'CREATE SCHEMA "{namespace.pg_schema}"')
    stop, tally = threading.Event(), {"checked": 0, "mixed": 0, "errors": [], "versions": {}}
    checker, events = None, []
    # from here on the schema is dropped however the run ends, even if the API cannot start
    try:
        conn.execute(f'SET search_path TO "{namespace.pg_schema}"')
        sink = [sinks.PostgresSink(conn, namespace.pg_schema, keep=3, reader_role=PG_READER)]
        v1, v2 = generated(users, 1), generated(users, 2)
        sinks.publish(sink, "bench-1", *v1, now)
        stack.stop_api()
        stack.start_api({"MLRECS_DB_SCHEMA": base, "MLRECS_SERVE_DATASETS": DATASET}, workers=workers)
        script = stack.state / "bench" / "serve.lua"
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(_WRK_SCRIPT % {"dataset": DATASET, "users": users})
        url = stack.api_url()
        checker = threading.Thread(target=_checker, args=(url, users, stop, tally), daemon=True)
        load = subprocess.Popen([wrk, "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", str(script), url],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        checker.start()
        started = time.monotonic()
        time.sleep(seconds / 3)
        t0 = time.monotonic()
        sinks.publish(sink, "bench-2", *v2, now)
        events.append({"event": "publish bench-2", "at_s": round(t0 - started, 1), "took_s": round(time.monotonic() - t0, 2)})
        time.sleep(max(0.0, seconds * 2 / 3 - (time.monotonic() - started)))
        t0 = time.monotonic()
        sinks.rollback(sink)
        events.append({"event": "rollback to bench-1", "at_s": round(t0 - started, 1), "took_s": round(time.monotonic() - t0, 2)})
        output, _ = load.communicate(timeout=seconds + 60)
    finally:
        stop.set()
        if checker is not None and checker.is_alive():
            checker.join(timeout=15)
        stack.stop_api()
        drop_schema(conn, namespace.pg_schema)
        conn.close()
    found = re.search(r"^\{.*\}$", output, re.M)
    if found is None:
        raise SystemExit(f"wrk gave no summary:\n{output}")
    summary = json.loads(found[0])
    errors = sum(summary["errors"].values())
    return {
        "name": f"serve-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}",
        "created_at": now.isoformat(),
        "users": users, "rows": users * TOP_N, "connections": connections, "seconds": seconds, "api_workers": workers,
        "cpus": __import__("os").cpu_count(),
        "requests_per_second": round(summary["requests"] / (summary["duration_us"] / 1e6), 1),
        "latency_ms": {k[:-3]: round(summary[k] / 1000, 2) for k in ("p50_us", "p90_us", "p99_us", "max_us")},
        "requests": summary["requests"], "errors": errors, "error_kinds": summary["errors"],
        "checked": tally["checked"], "mixed": tally["mixed"], "checker_errors": tally["errors"][:10],
        "versions_seen": tally["versions"], "switches": events,
    }


def main(argv: list[str] | None = None) -> int:
    from mlrecs_devkit.stack import Stack

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers of the API")
    parser.add_argument("--results", default=None, help="folder for the JSON (default: bench/results)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    result = run(Stack(settings), args.users, args.connections, args.seconds, args.workers)
    folder = Path(args.results) if args.results else settings.project_root / "bench" / "results"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{result['name']}.json").write_text(json.dumps(result, indent=2) + "\n")
    lat = result["latency_ms"]
    print(f"{result['name']}: {result['requests_per_second']:,.0f} requests/s at {result['connections']} connections, "
          f"p50 {lat['p50']} ms, p99 {lat['p99']} ms, max {lat['max']} ms; errors {result['errors']}; "
          f"checked {result['checked']:,} answers, mixed {result['mixed']}; versions seen {result['versions_seen']}")
    for event in result["switches"]:
        print(f"  {event['event']} at {event['at_s']} s, took {event['took_s']} s")
    print(f"  -> {folder / (result['name'] + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
