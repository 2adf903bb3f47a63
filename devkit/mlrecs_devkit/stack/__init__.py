"""The local stack: real Spark, PostgreSQL, S3 (SeaweedFS) and Airflow on 127.0.0.1, for `make` and tests.

    python -m mlrecs_devkit.stack up       # start what is not running; idempotent
    python -m mlrecs_devkit.stack down     # stop what `up` started, by recorded pid
    python -m mlrecs_devkit.stack status
    python -m mlrecs_devkit.stack env      # shell exports: connections and settings

All state lives under the state folder (`.local/` by default, git-ignored): ports, passwords
and S3 keys in stack.json, pids in run/, logs in logs/, the PostgreSQL cluster, the S3 store's
volumes (s3/), Spark's work dirs, the Airflow home and the data lake. Ports and secrets are
picked on the first `up` and kept after that.

One module per service (spark, postgres, s3, mirror, airflow, api); `Stack` combines them and
owns what needs all of them: the environment every process gets, and `up`, `down`, `status`.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from mlrecs_devkit.stack.airflow import AIRFLOW_ADMIN, Airflow
from mlrecs_devkit.stack.api import API_MODULE, Api
from mlrecs_devkit.stack.core import HOST, StackError, _stop
from mlrecs_devkit.stack.mirror import MIRROR_MODULE, Mirror
from mlrecs_devkit.stack.postgres import AIRFLOW_DATABASE, PG_DATABASE, PG_READER, PG_USER, PG_WRITER, Postgres
from mlrecs_devkit.stack.prerequisites import (
    check_prerequisites, check_test_prerequisites, java_major_version, postgres_bin_dir)
from mlrecs_devkit.stack.s3 import BUCKET, S3
from mlrecs_devkit.stack.spark import Spark
from movielens_recs.config import Settings

__all__ = [
    "AIRFLOW_ADMIN", "AIRFLOW_DATABASE", "API_MODULE", "BUCKET", "HOST", "MIRROR_MODULE", "PG_DATABASE",
    "PG_READER", "PG_USER", "PG_WRITER", "Settings", "Stack", "StackError", "check_prerequisites",
    "check_test_prerequisites", "java_major_version", "postgres_bin_dir",
]


class Stack(Spark, Postgres, S3, Mirror, Airflow, Api):
    def environment(self) -> dict[str, str]:
        """Everything a process needs to use the stack: Airflow config and connections."""
        cfg = self.config()
        root = self.settings.project_root
        venv_bin = str(Path(sys.executable).parent)
        aws_extra = {"endpoint_url": self.s3_endpoint(), "region_name": "us-east-1"}
        pipeline_key, pipeline_secret = self.s3_keys("pipeline")
        reader_key, reader_secret = self.s3_keys("reader")
        env = {
            "MLRECS_PROJECT_ROOT": str(root),
            "MLRECS_STATE_DIR": str(self.state),
            "MLRECS_S3_BUCKET": BUCKET,
            "AIRFLOW_HOME": str(self.state / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres_dsn(AIRFLOW_DATABASE).replace(
                "postgresql://", "postgresql+psycopg2://", 1
            ),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.state / "airflow" / "logs"),
            "AIRFLOW__API__HOST": HOST,
            "AIRFLOW__API__PORT": str(cfg["airflow_api_port"]),
            "AIRFLOW__API__BASE_URL": f"http://{HOST}:{cfg['airflow_api_port']}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{HOST}:{cfg['airflow_api_port']}/execution/",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": self.airflow_secret(),
            "AIRFLOW__API__SECRET_KEY": self.airflow_secret(),
            # the simple auth manager, with one admin whose password is in .local/stack.json
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{AIRFLOW_ADMIN}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.state / "airflow" / "passwords.json"),
            "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps(
                {
                    "conn_type": "spark",
                    "host": f"spark://{HOST}",
                    "port": cfg["spark_master_port"],
                    "extra": {"deploy-mode": "client", "spark-binary": "spark-submit"},
                }
            ),
            "AIRFLOW_CONN_POSTGRES_DEFAULT": self.postgres_dsn(),
            # what apps and the recommendations API connect as
            "AIRFLOW_CONN_POSTGRES_RECS_READER": self.postgres_dsn(role=PG_READER),
            "MLRECS_READER_DATABASE_URL": self.postgres_dsn(role=PG_READER),
            # what apps (and the API's POST of ratings) record rating events as
            "MLRECS_WRITER_DATABASE_URL": self.postgres_dsn(role=PG_WRITER),
            # the pipeline's S3 identity, and the apps' read-only one (S3_IDENTITIES)
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
                {"conn_type": "aws", "login": pipeline_key, "password": pipeline_secret, "extra": aws_extra}
            ),
            "AIRFLOW_CONN_AWS_RECS_READER": json.dumps(
                {"conn_type": "aws", "login": reader_key, "password": reader_secret, "extra": aws_extra}
            ),
            "MLRECS_READER_AWS_ACCESS_KEY_ID": reader_key,
            "MLRECS_READER_AWS_SECRET_ACCESS_KEY": reader_secret,
            # for boto3/pyarrow used outside Airflow (tests, the Spark driver)
            "AWS_ACCESS_KEY_ID": pipeline_key,
            "AWS_SECRET_ACCESS_KEY": pipeline_secret,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_S3": self.s3_endpoint(),
            "SPARK_LOCAL_IP": HOST,
            "PYSPARK_PYTHON": sys.executable,
            "PATH": os.pathsep.join([venv_bin, os.environ.get("PATH", "")]),
        }
        # the class-data-sharing archives, under any Spark settings of the user's own
        spark_conf = self.spark_jvm_conf()
        try:
            spark_conf.update(json.loads(os.environ.get("MLRECS_SPARK_CONF") or "{}"))
        except (ValueError, TypeError):
            spark_conf = {}  # left as the user set it; Settings names the problem
        if spark_conf:
            env["MLRECS_SPARK_CONF"] = json.dumps(spark_conf)
        # several workers share the machine's cores: each job's executors take one worker's share
        workers = self.spark_workers()
        if len(workers) > 1:
            env.setdefault("MLRECS_SPARK_EXECUTOR_CORES", os.environ.get("MLRECS_SPARK_EXECUTOR_CORES") or str(workers[0]["cores"]))
        env["MLRECS_MIRROR_URL"] = self.mirror_url()
        # the real releases come from the mirror only when it has them; generated ones always do
        if self.mirror_dir() and not os.environ.get("MLRECS_BASE_URL"):
            env["MLRECS_BASE_URL"] = self.mirror_url()
        return env

    # -- whole stack -----------------------------------------------------------------------
    SERVICES = {
        "spark-master": "deploy.master.Master",
        "postgres": "postgres",
        "s3": "weed server",
        "mirror": MIRROR_MODULE,
    }

    def up(self, airflow: bool = True) -> None:
        problems = check_prerequisites()
        if problems:
            raise StackError("cannot start the local stack:\n  - " + "\n  - ".join(problems))
        self.config()
        self.start_postgres()
        self.start_s3()
        self.start_mirror()
        self.start_spark()
        self.record_class_archives()
        if airflow:
            self.migrate_airflow()

    def down(self) -> list[str]:
        stopped = self.stop_airflow() + (["api"] if self.stop_api() else [])
        # workers before the master, so that no worker spins trying to reconnect
        for name, pid in self.spark_worker_pids().items():
            if pid is not None:
                _stop(pid, signal.SIGTERM)
                stopped.append(name)
            self._pid_file(name).unlink(missing_ok=True)
        for name in ["spark-master", "mirror", "s3", "postgres"]:
            pid = self.running_pid(name, self.SERVICES[name])
            if pid is None:
                self._pid_file(name).unlink(missing_ok=True)
                continue
            # SIGINT is PostgreSQL's "fast shutdown" and SeaweedFS's only clean stop (it ignores
            # SIGTERM; SIGINT takes it about 30 s). It is killed after 15 s: its volumes are
            # append-only and its filer store journaled, so a kill loses no acknowledged write.
            _stop(pid, signal.SIGINT if name in ("postgres", "s3") else signal.SIGTERM,
                  timeout=15 if name == "s3" else 30)
            self._pid_file(name).unlink(missing_ok=True)
            stopped.append(name)
        return stopped

    def status(self) -> dict[str, int | None]:
        """Pid (or None) of each service this machine's stack runs."""
        services = {name: self.running_pid(name, marker) for name, marker in self.SERVICES.items()}
        workers = {w["name"]: self.running_pid(w["name"], "deploy.worker.Worker") for w in self.spark_workers()}
        return {"spark-master": services.pop("spark-master"), **workers, **services}
