"""Run the daily DAG once on the local stack and print what it did (`make run`), or the
fold-in DAG (`make fold-in`: --fold-in).

Uses the real Airflow (`airflow dags test`, which runs every task for real against the stack's
metadata DB), then reads the run's task states and results back from that DB.

    python -m mlrecs_devkit.devrun [--dataset ml-latest-small] [--date 2026-11-20] [--user 1]
    python -m mlrecs_devkit.devrun --fold-in [--dataset ml-latest-small] [--user 900001]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Callable

from movielens_recs.config import DEFAULT_DATASET, Settings

DAG_ID = "movielens_recommendations"
FOLD_IN_DAG_ID = "movielens_fold_in"


def run_dag(logical_date: str, conf: dict, log_path: Path, env: dict | None = None,
            on_start: Callable[[int], None] | None = None, dag_id: str = DAG_ID) -> int:
    """`airflow dags test`: returns its exit code, its whole output goes to `log_path`.

    `on_start` gets the process id as soon as it runs (the benchmark samples its memory).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    airflow = str(Path(sys.executable).parent / "airflow")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [airflow, "dags", "test", dag_id, logical_date, "-c", json.dumps(conf)],
            # no DeadlineAlert: with no scheduler or triggerer here it could never fire, and
            # Airflow 3.3.2's `dags test` fails at the end of a run of a DAG that declares one
            # (apache/airflow#73428)
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "MLRECS_RUN_DEADLINE_SECONDS": "0", **(env or {})},
        )
        if on_start:
            on_start(proc.pid)
        return proc.wait()


def latest_run(dag_id: str = DAG_ID) -> dict:
    """The most recent run of the DAG: its state, each task's state, and the tasks' results (a
    mapped task's: the list of its instances' results, in map index order)."""
    from sqlalchemy import select

    from airflow.models import DagRun, TaskInstance
    from airflow.models.asset import AssetEvent
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.scalars(
            select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).limit(1)
        ).first()
        if run is None:
            raise LookupError(f"no run of {dag_id} found")
        tis = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run.run_id)
        ).all()
        xcoms = session.scalars(
            XComModel.get_many(run_id=run.run_id, dag_ids=dag_id, key="return_value")
        ).all()
        events = session.scalars(
            select(AssetEvent).where(AssetEvent.source_dag_id == dag_id, AssetEvent.source_run_id == run.run_id)
        ).all()
        # `dags test` sets the run's start to its logical date, so time the run by its tasks
        starts = [ti.start_date for ti in tis if ti.start_date]
        ends = [ti.end_date for ti in tis if ti.end_date]
        return {
            "run_id": run.run_id,
            "state": str(run.state),
            "conf": run.conf,
            "duration": (max(ends) - min(starts)).total_seconds() if starts and ends else None,
            "tasks": {
                ti.task_id: {
                    "state": str(ti.state),
                    "duration": ti.duration,
                    "start": ti.start_date.timestamp() if ti.start_date else None,
                    "end": ti.end_date.timestamp() if ti.end_date else None,
                }
                for ti in sorted(tis, key=lambda t: t.start_date or t.queued_dttm or run.start_date)
            },
            "results": _results(xcoms),
            "asset_events": [{"asset": e.asset.name, "uri": e.asset.uri, "extra": e.extra} for e in events],
        }


def _results(xcoms) -> dict:
    from airflow.models.xcom import XComModel

    results = {}
    for x in sorted(xcoms, key=lambda x: x.map_index):
        value = XComModel.deserialize_value(x)
        if x.map_index >= 0:
            results.setdefault(x.task_id, []).append(value)
        else:
            results[x.task_id] = value
    return results


def _failure_lines(log_path: Path, limit: int = 25) -> list[str]:
    """The lines of the run log that say what went wrong, without Airflow's log decoration."""
    wanted = ("Error:", "expectation(s) failed", "  - ", "Data Docs:", "refused", "Exception:")
    lines = []
    for raw in log_path.read_text(errors="replace").splitlines():
        if any(w in raw for w in wanted) and "Traceback" not in raw:
            text = raw.split("[airflow.task.hooks", 1)[0].strip()
            if text not in lines:
                lines.append(text)
    return lines[-limit:]


def _model_lines(settings: Settings, prepared: dict) -> list[str]:
    """The candidate's metrics beside the baseline's, the gate's reasons, and the champion,
    as the registry has them."""
    from movielens_recs import registry
    from movielens_recs.evaluation.report import summary_lines
    from movielens_recs.gate import rule_lines
    from movielens_recs.orchestration.connections import postgres_connect

    with postgres_connect(settings.db_schema) as conn:
        row = registry.get(conn, prepared["model_id"])
        champion = registry.champion(conn, prepared["dataset"])
    out = [f"  model {prepared['model_id']}: {row['status'].upper() if row else 'not registered'}",
           f"    at {prepared['model_uri']}"]
    if prepared.get("tuned_from"):
        out.append(f"    params from the dataset's tuning run {prepared['tuned_from']} (make tune)")
    if row and row.get("metrics"):
        out += ["    " + line for line in summary_lines(row["metrics"])]
    if row and row.get("decision"):
        out += ["    gate" + line for line in rule_lines(row["decision"])]
    out.append(f"  champion of {prepared['dataset']}: " + (registry.describe(champion) if champion else "none"))
    return out


def _publish_lines(settings: Settings, run: dict, dataset: str, user_id: int | None) -> list[str]:
    """Where the run published, what readers are served now, and one user's top N as a reader
    of PostgreSQL sees it."""
    from movielens_recs.orchestration.connections import postgres_connect
    from movielens_recs.publish import postgres as pg_publish
    from movielens_recs.publish.sinks import Namespace
    from movielens_recs.recommend.output import output_uri, read_marker

    out = []
    prepared = run["results"].get("prepare_model")
    if prepared and run["tasks"].get("recommend", {}).get("state") == "success":
        try:
            marker = read_marker(output_uri(prepared["model_uri"]))
            out.append(f"  recommendations: top {marker['top_n']} for {marker['users']:,} users, {marker['rows']:,} rows "
                       f"({marker['users_per_second']:,.0f} users/s), validated")
        except Exception as exc:  # the summary reports; it does not fail the run
            out.append(f"  recommendations: marker unreadable ({exc})")
    for result in (run["results"].get("publish") or {}).get("published", []):
        if result:
            extra = ""
            if result["sink"] == "postgres" and not result["already_current"]:
                extra = (f", COPY {result['rows'] / result['load_seconds']:,.0f} rows/s, "
                         f"readers switched in {result['switch_seconds'] * 1000:.1f} ms")
            out.append(f"  published to {result['where']}: {result['model_version']} ({result['rows']:,} rows{extra})")
    schema = Namespace(dataset, settings.db_schema).pg_schema
    with postgres_connect(schema=schema) as conn:
        pg_publish.ensure_schema(conn)
        served = pg_publish.current_version(conn)
        if served is None:
            out.append("  PostgreSQL serves no recommendations yet")
            return out
        if user_id is None:
            user_id = conn.execute("SELECT min(user_id) FROM recommendations").fetchone()[0]
        rows = conn.execute(
            "SELECT rank, movie_id, title, score, predicted_rating FROM recommendations WHERE user_id = %s ORDER BY rank",
            (user_id,),
        ).fetchall()
    out.append(f"  served now (PostgreSQL {schema}.recommendations): model version {served}")
    out.append(f"  top {len(rows)} for user {user_id}, read back from PostgreSQL:")
    out += [f"    {rank:3}. {title}  (movie {movie_id}, score {score:.2f}"
            + (f", predicted rating {predicted:.1f})" if predicted is not None else ")")
            for rank, movie_id, title, score, predicted in rows]
    if not rows:
        out.append(f"    user {user_id} has no recommendations (readers fall back to recommendations_cold_start)")
    return out


def format_summary(settings: Settings, run: dict, log_path: Path, dataset: str, user_id: int | None = None) -> str:
    out = [f"DAG {DAG_ID}, run {run['run_id']}: {run['state'].upper()}"
           + (f" in {run['duration']:.0f} s" if run["duration"] else "")]
    out.append("  tasks:")
    for task_id, ti in run["tasks"].items():
        took = f"{ti['duration']:.1f} s" if ti["duration"] is not None else ""
        out.append(f"    {task_id:20} {ti['state']:10} {took}")
    ready = run["results"].get("snapshot_ready") or run["results"].get("snapshot")
    if ready:
        out.append(f"  snapshot {ready['dataset']} / {ready['snapshot_id']} ({'reused' if ready.get('reused') else 'written'})")
        out.append(f"    ratings {ready['ratings_rows']:,}   movies {ready['movies_rows']:,}")
        out.append(f"    at {ready['ratings_uri'].rsplit('/ratings', 1)[0]}")
        validation = ready.get("validation")
        if validation:
            stats = validation.get("statistics", {})
            parts = [f"{name} {s['successful_expectations']}/{s['evaluated_expectations']}" for name, s in stats.items()]
            out.append(f"  validation: {'PASSED' if validation['success'] else 'FAILED'} ({', '.join(parts)})")
            if validation.get("data_docs_index"):
                out.append(f"    Data Docs: {validation['data_docs_index']}")
    prepared = run["results"].get("prepare_model")
    if prepared:
        out += _model_lines(settings, prepared)
    elif run["tasks"].get("prepare_model", {}).get("state") == "skipped":
        out.append("  model: an earlier run of this date, snapshot and params already decided it; nothing to redo")
    out += _publish_lines(settings, run, dataset, user_id)
    if run["state"] != "success":
        out.append("  what went wrong:")
        out += [f"    {line}" for line in _failure_lines(log_path)]
    out.append(f"  full log: {log_path}")
    return "\n".join(out)


def fold_in_summary(settings: Settings, run: dict, log_path: Path, dataset: str, user_id: int | None) -> str:
    """What each dataset's fold-in did, and one user's list as readers see it now."""
    from movielens_recs.orchestration.connections import postgres_connect
    from movielens_recs.publish.sinks import Namespace

    out = [f"DAG {FOLD_IN_DAG_ID}, run {run['run_id']}: {run['state'].upper()}"]
    for result in run["results"].get("fold_in") or []:
        out.append(f"  {result['dataset']}: {result['status']} (served version {result['model_version']})")
        if result["status"] == "folded":
            out.append(f"    fold-in {result['sequence']}: {result['events']:,} events of {result['users']:,} users, "
                       f"{result['folded_users']:,} lists replaced in {result['seconds']:.2f} s; watermark "
                       f"event {result['events_through']}")
    if not run["results"].get("fold_in"):
        out.append("  no dataset has a champion yet: make run first")
    if user_id is not None:
        with postgres_connect(schema=Namespace(dataset, settings.db_schema).pg_schema) as conn:
            rows = conn.execute("SELECT rank, movie_id, title, model_version, fold_in_seq FROM recommendations "
                                "WHERE user_id = %s ORDER BY rank", (user_id,)).fetchall()
        if rows:
            how = f"fold-in {rows[0][4]}" if rows[0][4] is not None else "the version's own list"
            out.append(f"  top {len(rows)} for user {user_id} ({rows[0][3]}, {how}):")
            out += [f"    {rank:3}. {title}  (movie {movie_id})" for rank, movie_id, title, _, _ in rows]
        else:
            out.append(f"  user {user_id} has no list of their own yet: readers get the cold-start list")
    if run["state"] != "success":
        out.append("  what went wrong:")
        out += [f"    {line}" for line in _failure_lines(log_path)]
    out.append(f"  full log: {log_path}")
    return "\n".join(out)


def _params(pairs: list[str]) -> dict:
    conf = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise SystemExit(f"--param wants KEY=VALUE, got {pair!r}")
        try:
            conf[key] = json.loads(raw)
        except json.JSONDecodeError:
            conf[key] = raw
    return conf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=os.environ.get("DATASET") or DEFAULT_DATASET)
    parser.add_argument("--date", default=(date.today() - timedelta(days=1)).isoformat(),
                        help="logical date of the run (default: yesterday)")
    parser.add_argument("--json", action="store_true", help="print the run's states and results as JSON")
    parser.add_argument("--user", type=int, default=None, help="whose top N to print (default: the lowest user id)")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="a DAG param for this run (VALUE as JSON, else a string), e.g. --param max_iter=1")
    parser.add_argument("--fold-in", action="store_true",
                        help=f"run {FOLD_IN_DAG_ID} now (every dataset with a champion) instead of the daily DAG")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    log_path = settings.state_dir / "logs" / f"dag-run-{time.strftime('%Y%m%dT%H%M%S')}.log"
    if args.fold_in:
        return _fold_in(settings, args, log_path)
    if not args.json:
        print(f"running {DAG_ID} for {args.date} on {args.dataset} from {settings.base_url} ...", flush=True)
    code = run_dag(args.date, {"dataset": args.dataset, **_params(args.param)}, log_path)
    run = latest_run()
    if args.json:
        print(json.dumps({**run, "exit_code": code, "log": str(log_path)}, default=str))
    else:
        print(format_summary(settings, run, log_path, args.dataset, args.user))
    return 0 if code == 0 and run["state"] == "success" else 1


def _fold_in(settings: Settings, args, log_path: Path) -> int:
    from datetime import datetime, timezone

    code = run_dag(datetime.now(timezone.utc).isoformat(timespec="seconds"), _params(args.param), log_path,
                   dag_id=FOLD_IN_DAG_ID)
    run = latest_run(FOLD_IN_DAG_ID)
    if args.json:
        print(json.dumps({**run, "exit_code": code, "log": str(log_path)}, default=str))
    else:
        print(fold_in_summary(settings, run, log_path, args.dataset, args.user))
    return 0 if code == 0 and run["state"] == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
