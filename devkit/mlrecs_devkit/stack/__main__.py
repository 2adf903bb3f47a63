"""`python -m mlrecs_devkit.stack up|down|status|env|airflow-up|airflow-down|serve|serve-down`."""

from __future__ import annotations

import argparse
import sys

from mlrecs_devkit.stack import (
    AIRFLOW_ADMIN, AIRFLOW_DATABASE, API_MODULE, BUCKET, HOST, PG_DATABASE, Stack, StackError)
from movielens_recs.config import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlrecs_devkit.stack", description="the local stack")
    parser.add_argument("command", choices=["up", "down", "status", "env", "airflow-up", "airflow-down",
                                            "serve", "serve-down"])
    parser.add_argument("--no-airflow", action="store_true", help="up: skip the Airflow metadata DB migration")
    parser.add_argument("--workers", type=int, default=None,
                        help="up: run this many Spark workers, sharing the machine's worker cores and memory (kept)")
    args = parser.parse_args(argv)
    stack = Stack(Settings.from_env())
    try:
        if args.command == "up":
            if args.workers is not None:
                stack.set_spark_workers(args.workers)
            stack.up(airflow=not args.no_airflow)
            cfg = stack.config()
            print(f"Spark master   {stack.spark_master_url()}  (UI http://{HOST}:{cfg['spark_master_ui_port']})")
            for worker in stack.spark_workers():
                print(f"  {worker['name']:12} {worker['cores']} cores, {worker['memory']}  (UI http://{HOST}:{worker['ui_port']})")
            print(f"PostgreSQL     {HOST}:{cfg['postgres_port']}  databases {PG_DATABASE}, {AIRFLOW_DATABASE}")
            print(f"S3 (SeaweedFS) {stack.s3_endpoint()}  bucket {BUCKET}, data {stack.state / 's3' / 'data'}")
            print("               keys: pipeline AWS_ACCESS_KEY_ID, apps MLRECS_READER_AWS_ACCESS_KEY_ID (make env)")
            served = ", ".join(map(str, stack.mirror_dirs()))
            print(f"MovieLens      {stack.mirror_url()}  (serving {served})")
            print(f"Airflow home   {stack.environment()['AIRFLOW_HOME']}")
            archives = "recorded in " + str(stack.class_archive_dir()) if stack.spark_jvm_conf() else "none (see the warning above)"
            print(f"Spark JVMs     class-data-sharing archives {archives}")
        elif args.command == "down":
            stopped = stack.down()
            print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        elif args.command == "airflow-up":
            stack.start_airflow()
            print(f"Airflow UI     {stack.airflow_url()}  user {AIRFLOW_ADMIN}, password {stack.airflow_password()}")
            print(f"               logs: {stack.state / 'logs'}/airflow-*.log; stop with `make airflow-down`")
        elif args.command == "serve":
            stack.start_api()
            print(f"Recommendations API  {stack.api_url()}  (docs {stack.api_url()}/docs; log {stack._log_file('api')})")
            print("                     stop with `make serve-down` (make down stops it too)")
        elif args.command == "serve-down":
            print("stopped: api" if stack.stop_api() else "the API was not running")
        elif args.command == "airflow-down":
            stopped = stack.stop_airflow()
            print("stopped: " + (", ".join(stopped) if stopped else "no Airflow service was running"))
        elif args.command == "status":
            api = {"api": stack.running_pid("api", API_MODULE)}
            for name, pid in {**stack.status(), **stack.airflow_status(), **api}.items():
                print(f"{name:14} {'running, pid ' + str(pid) if pid else 'stopped'}")
        elif args.command == "env":
            for key, value in stack.environment().items():
                print(f"export {key}={_shell_quote(value)}")
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


if __name__ == "__main__":
    sys.exit(main())
