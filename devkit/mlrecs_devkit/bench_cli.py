"""The benchmark command (`make bench`): run the daily DAG once and measure its parts side by side.

    python -m mlrecs_devkit.bench_cli [--dataset ml-latest-small | --size 1M] [--name NAME]
        [--results-dir bench/results] [--copy-rows 1620000] [--reuse-lake]

`--size` benchmarks a generated MovieLens-shaped set of that many ratings (`synthetic-<size>`,
written by `make data` if it is not there yet and served by the stack's mirror).

Writes `<results-dir>/<name>.json` (one file per run, so figures can be compared over time) and
prints a table:
- each task's wall time and the whole DAG's, from the real run on the local stack, and the peak
  resident memory of each kind of process while the task ran (benchmark/memory.py), with any
  out-of-memory the Spark logs report;
- the model's quality (RMSE, NDCG@10) and the popularity baseline's NDCG@10;
- top-N users/s of the recommend job, of `recommendForAllUsers` on the same model, and of a
  numpy machine-limit estimate, in one spark-submit;
- PostgreSQL: COPY load rows/s against row-by-row inserts, and how long readers wait during the
  view switch, on the run's recommendations and on a table of --copy-rows rows;
- training time against ratings count over every result in the folder (does it grow linearly?);
- the fold-in (benchmark/foldin_bench.py): NDCG@10 of folded-in lists against the unchanged
  champion's and a full retrain's on a time split, and 10,000 events of 2,000 users folded in and
  published by the fold-in DAG, timed.

The run has its own registry schema, S3 prefix and Airflow run, so a benchmark never replaces
what `make run` publishes; the schema and the S3 objects are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

STAGES = ("download", "snapshot", "validate", "train_evaluate", "recommend", "publish")


def _spark_master() -> str:
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection("spark_default")
    host = conn.host if "://" in (conn.host or "") else f"spark://{conn.host}"
    return f"{host}:{conn.port}" if conn.port else host


def _bench_job_argv(settings, job: str, args: list[str]) -> list[str]:
    """spark-submit of one of the dev kit's own jobs (devkit/spark_jobs/), which ship the dev
    kit beside the product's code."""
    import mlrecs_devkit
    from movielens_recs.spark_submit import build_py_files, spark_submit_argv

    devkit = Path(mlrecs_devkit.__file__).resolve().parent
    return spark_submit_argv(settings, _spark_master(), job, args,
                             application=devkit.parent / "spark_jobs" / f"{job}.py",
                             extra_py_files=(build_py_files(settings.state_dir / "build", devkit),))


def bench_topn(settings, prepared: dict, top_n: int, repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "topn.json"
        argv = _bench_job_argv(settings, "bench_topn", [
            "--model-uri", prepared["model_uri"], "--ratings", prepared["ratings_spark_uri"],
            "--movies", prepared["movies_spark_uri"], "--top-n", str(top_n), "--output", str(output),
            "--repeats", str(repeats),
        ])
        proc = subprocess.run(argv, capture_output=True, text=True)
        if proc.returncode != 0 or not output.exists():
            raise SystemExit(f"bench_topn failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        return json.loads(output.read_text())


def bench_postgres(settings, prepared: dict, copy_rows: int) -> dict:
    from mlrecs_devkit.benchmark.publish_bench import drop_schema, measure_postgres, scaled_recommendations
    from movielens_recs.orchestration.connections import postgres_connect
    from movielens_recs.recommend.output import load, output_uri

    _, recs, cold = load(output_uri(prepared["model_uri"]))
    schema = f"bench_pg_{uuid.uuid4().hex[:8]}"
    try:
        figures = {"run_output": measure_postgres(lambda: postgres_connect(schema=schema), recs, cold)}
        if copy_rows:
            n = int(max(recs.column("rank").to_pylist()))
            figures["scaled"] = measure_postgres(lambda: postgres_connect(schema=schema),
                                                 scaled_recommendations(recs, copy_rows, n), cold)
    finally:
        with postgres_connect(schema=schema) as conn:
            drop_schema(conn, schema)
    return figures


def bench_fold_in(settings, prepared: dict, scratch: Path, events: int = 10_000, users: int = 2_000) -> dict:
    """Quality in a spark-submit of its own; throughput through the fold-in DAG on the run's
    published champion."""
    import pyarrow.parquet as pq
    import psycopg

    from mlrecs_devkit.benchmark.foldin_bench import throughput
    from movielens_recs.lake.filesystem import resolve
    from movielens_recs.models.store import ModelLayout
    from mlrecs_devkit.devrun import FOLD_IN_DAG_ID, latest_run, run_dag
    from movielens_recs.publish.sinks import Namespace

    output = scratch / "fold_in_quality.json"
    argv = _bench_job_argv(settings, "bench_fold_in", [
        "--ratings", prepared["ratings_spark_uri"], "--params", json.dumps(prepared["params"]),
        "--work-uri", f"file://{scratch / 'fold_in_model'}", "--checkpoint-dir", settings.checkpoint_dir,
        "--output", str(output)])
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0 or not output.exists():
        raise SystemExit(f"bench_fold_in failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    quality = json.loads(output.read_text())

    layout = ModelLayout(prepared["model_uri"])
    fs, path = resolve(layout.train)
    known = sorted(set(pq.read_table(path, filesystem=fs, columns=["user_id"]).column("user_id").to_pylist()))
    fs, path = resolve(f"{layout.ranking_als}/itemFactors")
    movies = pq.read_table(path, filesystem=fs, columns=["id"]).column("id").to_pylist()
    chosen = known[:users] + list(range(max(known) + 1, max(known) + 1 + max(0, users - len(known))))
    schema = Namespace(prepared["dataset"], settings.db_schema).pg_schema
    with psycopg.connect(os.environ["MLRECS_WRITER_DATABASE_URL"], autocommit=True) as writer:
        written = throughput(writer, schema, chosen, movies, events)
    log_path = settings.state_dir / "logs" / f"bench-fold-in-{uuid.uuid4().hex[:8]}.log"
    from datetime import datetime, timezone

    code = run_dag(datetime.now(timezone.utc).isoformat(timespec="seconds"), {"datasets": [prepared["dataset"]]},
                   log_path, dag_id=FOLD_IN_DAG_ID)
    run = latest_run(FOLD_IN_DAG_ID)
    if code != 0 or run["state"] != "success":
        raise SystemExit(f"the fold-in DAG failed; see {log_path}")
    [result] = run["results"]["fold_in"]
    task = run["tasks"]["fold_in"]
    return {"quality": quality, "throughput": {
        **written, "known_users": min(len(known), users), "folded": result,
        "task_seconds": round(task["duration"], 2), "dag_seconds": round(run["duration"], 2),
        "events_per_second": round(result["events"] / result["seconds"]),
        "users_per_second": round(result["users"] / result["seconds"])}}


def _quality(settings, prepared: dict) -> dict:
    from movielens_recs import registry
    from movielens_recs.lake.filesystem import read_json
    from movielens_recs.models.store import ModelLayout
    from movielens_recs.orchestration.connections import postgres_connect

    with postgres_connect(settings.db_schema) as conn:
        row = registry.get(conn, prepared["model_id"])
    metrics = row["metrics"]
    trained = read_json(ModelLayout(prepared["model_uri"]).metadata)
    return {"status": row["status"], "training_rows": row["training_rows"], "rmse": metrics["model"]["rmse"], "mae": metrics["model"]["mae"],
            "ndcg_at_k": metrics["model"]["ndcg_at_k"], "baseline_ndcg_at_k": metrics["popularity"]["ndcg_at_k"],
            "bias_rmse": metrics["bias"]["rmse"], "ndcg_at_k_liked": metrics["model"]["ndcg_at_k_liked"],
            "baseline_ndcg_at_k_liked": metrics["popularity"]["ndcg_at_k_liked"],
            "k": metrics["k"],
            # inside train_evaluate: fitting both models, and evaluating them (the rest is start-up and I/O)
            "fit_seconds": trained["fit_seconds"], "evaluate_seconds": metrics["evaluate_seconds"]}


def _cleanup(settings, dataset: str, schema: str, prefix: str) -> None:
    from mlrecs_devkit.benchmark.publish_bench import drop_schema
    from movielens_recs.orchestration.connections import postgres_connect
    from movielens_recs.orchestration.publishing import s3_client
    from movielens_recs.publish.sinks import Namespace

    with postgres_connect(schema=schema) as conn:
        drop_schema(conn, schema, Namespace(dataset, schema).pg_schema)
    client = s3_client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=settings.s3_bucket, Prefix=prefix + "/"):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=settings.s3_bucket, Delete={"Objects": keys})


def format_table(result: dict) -> str:
    out = [f"benchmark {result['name']}: {result['dataset']} on {result['machine']['cpus']} CPUs, "
           f"{result['machine']['memory_gib']} GiB ({result['machine']['platform']})"]
    out.append(f"  whole DAG {result['dag_seconds']:.1f} s; peak resident memory (MiB) while each stage ran:")
    kinds = ("airflow_task", "driver_jvm", "driver_python", "executor_jvm", "executor_python", "total")
    out.append(f"    {'stage':12} {'seconds':>8} " + " ".join(f"{k:>15}" for k in kinds))
    for stage, seconds in result["stages"].items():
        peaks = result["memory"]["stages"].get(stage) or {}
        mib = " ".join(f"{peaks.get(k, 0) / 2**20:15,.0f}" for k in kinds) if peaks else ""
        out.append(f"    {stage:12} {'skipped' if seconds is None else f'{seconds:8.1f}'} {mib}")
    m = result["memory"]
    out.append(f"    configured: driver {m['configured']['driver_memory']}, executor {m['configured']['executor_memory']} "
               f"(heap + overhead {m['limits']['driver_jvm'] / 2**20:,.0f} / {m['limits']['executor_jvm'] / 2**20:,.0f} MiB): "
               f"{'every JVM within it' if m['within_limits'] else 'A JVM WENT OVER IT'}; "
               f"out-of-memory reports: {len(m['out_of_memory'])}")
    c = result.get("cluster")
    if c:
        shapes = ", ".join(f"{w['name']} {w['cores']} cores {w['memory']}" for w in c["workers"])
        ran = ", ".join(f"{name} {count:,}" for name, count in c["tasks_per_worker"].items())
        out.append(f"  cluster: {shapes}; executors of {c['executor_cores']} cores; tasks run per worker: {ran}")
    q = result["quality"]
    out.append(f"  quality: RMSE {q['rmse']:.4f}  NDCG@{q['k']} {q['ndcg_at_k']:.4f}  "
               f"baseline NDCG@{q['k']} {q['baseline_ndcg_at_k']:.4f}")
    t = result["topn"]
    out.append(f"  top-{t['top_n']} for {t['users']:,} users x {t['items']:,} movies, rank {t['rank']}:")
    for key, label in (("recommend_job", "recommend job"), ("recommend_for_all_users", "recommendForAllUsers"),
                       ("machine_limit", "numpy machine limit")):
        out.append(f"    {label:22} {t[key]['users_per_second']:>12,.0f} users/s  ({t[key]['seconds']} s)")
    out.append(f"    recommend job = {t['speedup_vs_recommend_for_all_users']}x recommendForAllUsers, "
               f"{t['fraction_of_machine_limit']:.1%} of the machine limit; gathering seen movies alone "
               f"{t['recommend_job_grouping_seen_seconds']} s")
    for key, p in result["postgres"].items():
        out.append(f"  PostgreSQL ({key}, {p['rows']:,} rows): load {p['copy_rows_per_second']:,} rows/s with COPY, "
                   f"{p['row_by_row_rows_per_second']:,} rows/s row by row ({p['copy_speedup_vs_row_by_row']}x)")
        out.append(f"    switch at most {p['switch_ms_max']} ms; reader queries overlapping a switch: "
                   f"{p['reader_queries_during_switch']}, longest {p['reader_ms_max_during_switch']} ms")
        out.append(f"    readers overall: median {p['reader_ms_median']} ms, max {p['reader_ms_max']} ms over "
                   f"{p['reader_queries']:,} queries, {p['reader_inconsistent_reads']} inconsistent")
    out += _fold_in_lines(result.get("fold_in"))
    return "\n".join(out)


def _fold_in_lines(fold_in: dict | None) -> list[str]:
    if not fold_in:
        return []
    q, t = fold_in["quality"], fold_in["throughput"]
    ndcg = q["ndcg"]
    out = [f"  fold-in quality, time split ({q['users']:,} users, latest {q['split']['held_out_fraction']:.0%} of their "
           f"ratings held out, the earlier half folded in): NDCG@{q['k']} on the later half",
           f"    unchanged champion {ndcg['unchanged']:.4f}   fold-in {ndcg['fold_in']:.4f}   full retrain "
           f"{ndcg['retrain']:.4f}   gap closed {q['gap_closed']:.0%}   popularity {q['popularity']['ndcg']:.4f}"
           if q["gap_closed"] is not None else
           f"    unchanged {ndcg['unchanged']:.4f}, fold-in {ndcg['fold_in']:.4f}, retrain {ndcg['retrain']:.4f}"]
    f = t["folded"]
    out.append(f"  fold-in throughput: {f['events']:,} events of {f['users']:,} users ({t['known_users']:,} known to the "
               f"model) folded and published in {f['seconds']:.1f} s ({t['events_per_second']:,} events/s, "
               f"{t['users_per_second']:,} users/s); the DAG's task {t['task_seconds']} s, its run {t['dag_seconds']} s")
    out.append("    phases (s): " + ", ".join(f"{k} {v}" for k, v in (f.get("phases") or {}).items()))
    return out


def scaling(results_dir: Path) -> list[dict]:
    """Training seconds per million ratings over every result in the folder, smallest set first."""
    rows = []
    for path in sorted(results_dir.glob("*.json")):
        result = json.loads(path.read_text())
        stages = result.get("stages", {})
        # one stage has trained and evaluated since train_evaluate; older results had "train" alone
        ratings, train = result.get("quality", {}).get("training_rows"), stages.get("train_evaluate") or stages.get("train")
        if ratings and train:
            rows.append({"name": result["name"], "dataset": result["dataset"], "ratings": ratings,
                         "train_seconds": train, "dag_seconds": result["dag_seconds"],
                         "train_seconds_per_million": round(train / ratings * 1e6, 2)})
    return sorted(rows, key=lambda r: (r["ratings"], r["name"]))


def format_scaling(rows: list[dict]) -> str:
    out = ["training time against ratings (all results in the folder):",
           f"    {'result':40} {'ratings':>12} {'train s':>9} {'s per 1M':>9} {'DAG s':>8}"]
    out += [f"    {r['name'][:40]:40} {r['ratings']:>12,} {r['train_seconds']:>9.1f} "
            f"{r['train_seconds_per_million']:>9.2f} {r['dag_seconds']:>8.1f}" for r in rows]
    return "\n".join(out)


def _memory(settings, sampler, run: dict, started: float, log_path: Path) -> dict:
    from mlrecs_devkit.benchmark.memory import container_limit, out_of_memory_lines
    from movielens_recs.spark_submit import spark_conf

    stages = {}
    for stage in STAGES:
        task = run["tasks"].get(stage) or {}
        if task.get("start") and task.get("end"):
            stages[stage] = sampler.peaks(task["start"], task["end"])
    spark_logs = list((settings.state_dir / "spark" / "work").glob("*/*/std*"))
    whole = sampler.peaks(started, time.time())
    conf = spark_conf(settings)
    limits = {"driver_jvm": container_limit(settings.spark_driver_memory, conf.get("spark.driver.memoryOverhead")),
              "executor_jvm": container_limit(settings.spark_executor_memory, conf.get("spark.executor.memoryOverhead"))}
    return {
        "stages": stages,
        "whole_run": whole,
        "samples": len(sampler.samples),
        "configured": {"driver_memory": settings.spark_driver_memory,
                       "executor_memory": settings.spark_executor_memory,
                       "executor_memory_overhead": conf.get("spark.executor.memoryOverhead")},
        "limits": limits,
        "within_limits": all(whole[kind] <= limit for kind, limit in limits.items()),
        "out_of_memory": out_of_memory_lines([log_path, *spark_logs], since=started),
    }


def ensure_generated(size: str, seed: int) -> str:
    """The name of the generated set of `size` ratings, written first if the mirror lacks it."""
    from movielens_recs.config import Settings
    from mlrecs_devkit.synthetic import Shape, default_name, parse_size, write_archive
    from mlrecs_devkit.stack import Stack

    name = default_name(size, seed)
    stack = Stack(Settings.from_env())
    if not (stack.generated_dir() / f"{name}.zip").exists():
        print(f"generating {name} ...", flush=True)
        write_archive(stack.generated_dir(), name, Shape.for_ratings(parse_size(size)), seed)
    # generated sets are only ever on the local mirror, whatever MLRECS_BASE_URL says
    os.environ["MLRECS_BASE_URL"] = stack.mirror_url()
    return name


def _machine() -> dict:
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {"cpus": os.cpu_count(), "memory_gib": round(pages / 1024**3, 1), "platform": platform.platform(),
            "python": platform.python_version()}


def main(argv: list[str] | None = None) -> int:
    from mlrecs_devkit.synthetic import DEFAULT_SEED

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    choice = parser.add_mutually_exclusive_group()
    choice.add_argument("--dataset", default=os.environ.get("DATASET") or None, help="default: ml-latest-small")
    choice.add_argument("--size", default=None,
                        help="a generated set of this many ratings (100k, 1M, 10M, 25M), written if missing")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="the generated set's seed (with --size)")
    parser.add_argument("--name", default=None, help="default: <dataset>-<UTC time>")
    parser.add_argument("--results-dir", default=None, help="default: bench/results in the project")
    parser.add_argument("--copy-rows", type=int, default=1_620_000,
                        help="rows of the scaled PostgreSQL load (default: ml-25m's 162k users x 10); 0 skips it")
    parser.add_argument("--top-n", type=int, default=10)
    parser.add_argument("--topn-repeats", type=int, default=3,
                        help="rounds in which the top-N variants take turns; each is timed as its best round")
    parser.add_argument("--fold-in-events", type=int, default=10_000,
                        help="rating events folded in by the fold-in DAG for the throughput figure")
    parser.add_argument("--fold-in-users", type=int, default=2_000, help="the users those events come from")
    parser.add_argument("--reuse-lake", action="store_true",
                        help="use the stack's lake, so a snapshot made earlier is reused and validation skipped "
                             "(default: a fresh lake, so every stage runs)")
    args = parser.parse_args(argv)
    if args.size:
        args.dataset = ensure_generated(args.size, args.seed)
    args.dataset = args.dataset or "ml-latest-small"

    name = args.name or f"{args.dataset}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    tag = uuid.uuid4().hex[:8]
    # the benchmark's own registry and published set: never what `make run` serves
    os.environ["MLRECS_DB_SCHEMA"] = f"bench_{tag}"
    os.environ["MLRECS_S3_PREFIX"] = f"bench/{tag}"

    from movielens_recs.config import Settings
    from mlrecs_devkit.devrun import latest_run, run_dag

    scratch = Settings.from_env().state_dir / "bench" / tag
    os.environ["MLRECS_MODEL_STORE_URI"] = str(scratch / "models")  # never over a model `make run` serves
    if not args.reuse_lake:
        os.environ["MLRECS_LAKE_URI"] = str(scratch / "lake")
        os.environ["MLRECS_DOWNLOAD_DIR"] = str(scratch / "downloads")
        os.environ["MLRECS_DATA_DOCS_DIR"] = str(scratch / "data_docs")
    settings = Settings.from_env()
    results_dir = Path(args.results_dir) if args.results_dir else settings.project_root / "bench" / "results"
    log_path = settings.state_dir / "logs" / f"bench-{name}.log"
    print(f"benchmark {name}: running the DAG on {args.dataset} (log {log_path}) ...", flush=True)
    from mlrecs_devkit.benchmark.memory import MemorySampler
    from mlrecs_devkit.stack import Stack

    stack = Stack(settings)
    worker_pids = [pid for pid in stack.spark_worker_pids().values() if pid]
    workers = stack.spark_workers()
    # Spark's event logs of the run's applications: which worker ran which tasks
    events = scratch / "spark-events"
    events.mkdir(parents=True, exist_ok=True)
    os.environ["MLRECS_SPARK_CONF"] = json.dumps({
        **json.loads(os.environ.get("MLRECS_SPARK_CONF") or "{}"),
        "spark.eventLog.enabled": "true", "spark.eventLog.dir": f"file://{events}", "spark.eventLog.compress": "false"})
    dag_pid: list[int] = []
    sampler = MemorySampler(lambda: dag_pid[:1] + worker_pids).start()
    started = time.time()
    try:
        try:
            code = run_dag((date.today() - timedelta(days=1)).isoformat(),
                           {"dataset": args.dataset, "top_n": args.top_n}, log_path, on_start=dag_pid.append)
        finally:
            sampler.stop()
        run = latest_run()
        if code != 0 or run["state"] != "success" or run["tasks"].get("publish", {}).get("state") != "success":
            print(f"the DAG run did not publish (state {run['state']}); see {log_path}", file=sys.stderr)
            return 1
        prepared = run["results"]["prepare_model"]
        from mlrecs_devkit.benchmark.spread import tasks_per_worker, totals

        spread = tasks_per_worker(events, {w["ui_port"]: w["name"] for w in workers})
        cluster = {"workers": [{k: w[k] for k in ("name", "cores", "memory")} for w in workers],
                   "executor_cores": settings.spark_executor_cores, "tasks_per_worker": totals(spread),
                   "tasks_per_worker_by_application": spread}
        print("measuring top-N throughput ...", flush=True)
        topn = bench_topn(settings, prepared, args.top_n, args.topn_repeats)
        print("measuring PostgreSQL loads and the switch ...", flush=True)
        postgres = bench_postgres(settings, prepared, args.copy_rows)
        print(f"measuring the fold-in: quality on a time split, then {args.fold_in_events:,} events through its DAG ...",
              flush=True)
        fold_in = bench_fold_in(settings, prepared, scratch, args.fold_in_events, args.fold_in_users)
        result = {
            "name": name,
            "dataset": args.dataset,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": _machine(),
            "dag_seconds": run["duration"],
            "stages": {stage: run["tasks"].get(stage, {}).get("duration") for stage in STAGES},
            "memory": _memory(settings, sampler, run, started, log_path),
            "cluster": cluster,
            "quality": _quality(settings, prepared),
            "topn": topn,
            "postgres": postgres,
            "fold_in": fold_in,
            "model_id": prepared["model_id"],
            "log": str(log_path),
        }
    finally:
        _cleanup(settings, args.dataset, os.environ["MLRECS_DB_SCHEMA"], os.environ["MLRECS_S3_PREFIX"])
        shutil.rmtree(scratch, ignore_errors=True)
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(format_table(result))
    print(format_scaling(scaling(results_dir)))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
