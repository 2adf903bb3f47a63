"""The local stack: real Spark, PostgreSQL, S3 (SeaweedFS) and Airflow on 127.0.0.1, for `make` and tests.

    python -m movielens_recs.devstack up       # start what is not running; idempotent
    python -m movielens_recs.devstack down     # stop what `up` started, by recorded pid
    python -m movielens_recs.devstack status
    python -m movielens_recs.devstack env      # shell exports: connections and settings

All state lives under the state folder (`.local/` by default, git-ignored): ports, passwords
and S3 keys in stack.json, pids in run/, logs in logs/, the PostgreSQL cluster, the S3 store's
volumes (s3/), Spark's work dirs, the Airflow home and the data lake. Ports and secrets are
picked on the first `up` and kept after that.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from movielens_recs.config import Settings

HOST = "127.0.0.1"
BUCKET = "mlrecs"
MIRROR_MODULE = "movielens_recs.datasets.mirror"
API_MODULE = "movielens_recs.serving.api"
PG_DATABASE = "mlrecs"
PG_USER = "mlrecs"
# the apps' role: SELECT on the namespaces' reader views, granted by each publish; nothing else
PG_READER = "mlrecs_reader"
# the apps' role that records ratings: INSERT on the namespaces' rating_events, granted by each
# publish (foldin/events.py); nothing else, not even reading them back
PG_WRITER = "mlrecs_writer"
AIRFLOW_DATABASE = "airflow"
AIRFLOW_ADMIN = "admin"
# The S3 store's identities (.local/s3/identities.json): `admin` only creates the bucket,
# `pipeline` reads and writes the bucket, `reader` (apps) reads and lists published
# recommendations: `<bucket>/recommendations/...` or `<bucket>/<prefix>/recommendations/...`,
# manifests included, and nothing else. The lake and the model store are folders, never in the
# bucket, so no grant can reach them.
S3_IDENTITIES = ("admin", "pipeline", "reader")
# SeaweedFS listens on eight ports (HTTP and gRPC of master, volume, filer and S3 gateway);
# all are picked free and bound to 127.0.0.1.
SEAWEED_PORTS = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc")
# `make airflow`: the services of a real deployment. Log serving is left out (--skip-serve-logs):
# it would listen on every interface, and the API server reads the log files directly here.
# The first word of each command is also how its process is recognised; the API server retitles
# itself "airflow api_server ..." once it runs.
AIRFLOW_SERVICES = {
    "airflow-api-server": ["api-server"],
    "airflow-scheduler": ["scheduler", "--skip-serve-logs"],
    "airflow-dag-processor": ["dag-processor"],
    "airflow-triggerer": ["triggerer", "--skip-serve-logs"],
}


class StackError(RuntimeError):
    pass


# -- prerequisites ---------------------------------------------------------------------------
def java_major_version() -> int | None:
    java = shutil.which("java", path=_java_path())
    if not java:
        return None
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        return None
    major = int(match[1])
    return int(match[2]) if major == 1 and match[2] else major


def _java_path() -> str:
    home = os.environ.get("JAVA_HOME")
    return os.pathsep.join(filter(None, [f"{home}/bin" if home else None, os.environ.get("PATH", "")]))


def postgres_bin_dir() -> Path | None:
    if os.environ.get("MLRECS_PG_BIN"):
        return Path(os.environ["MLRECS_PG_BIN"])
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return versions[-1].parent if versions else None


def check_prerequisites() -> list[str]:
    problems = []
    major = java_major_version()
    if major is None:
        problems.append("Java is not installed: Spark 4 needs Java 17 or newer (Debian: apt-get install openjdk-17-jre-headless)")
    elif major < 17:
        problems.append(f"Java {major} found, Spark 4 needs 17 or newer (Debian: apt-get install openjdk-17-jre-headless, or set JAVA_HOME)")
    pg = postgres_bin_dir()
    if pg is None or not (pg / "postgres").exists() or not (pg / "pg_ctl").exists():
        problems.append("PostgreSQL server binaries (initdb, postgres) not found (Debian: apt-get install postgresql-15, or set MLRECS_PG_BIN)")
    return problems


def check_test_prerequisites() -> list[str]:
    """What only the test suite needs on top of the stack: the browser of the UI test, and the
    load generator of `make bench-serve`, whose test runs it."""
    problems = []
    if not Path("/usr/bin/chromium").exists():
        problems.append("Chromium not found at /usr/bin/chromium: the Airflow UI test needs it (Debian: apt-get install chromium; .ci/run installs it)")
    if not shutil.which("wrk"):
        problems.append("wrk not found: the API load test needs it (Debian: apt-get install wrk; .ci/run installs it)")
    return problems


# -- state -----------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


@dataclass
class Stack:
    settings: Settings

    @property
    def state(self) -> Path:
        return self.settings.state_dir

    @property
    def config_file(self) -> Path:
        return self.state / "stack.json"

    def config(self) -> dict:
        """Ports and secrets: chosen on the first call, then read back so they never change."""
        if self.config_file.exists():
            return json.loads(self.config_file.read_text())
        cfg = {
            "spark_master_port": _free_port(),
            "spark_master_ui_port": _free_port(),
            "spark_worker_ui_port": _free_port(),
            "postgres_port": _free_port(),
            "postgres_password": secrets.token_hex(12),
            "postgres_superuser_password": secrets.token_hex(12),
            "s3_port": _free_port(),
            "mirror_port": _free_port(),
            "airflow_api_port": _free_port(),
            "airflow_admin_password": secrets.token_hex(8),
            "spark_worker_cores": int(os.environ.get("MLRECS_SPARK_WORKER_CORES") or os.cpu_count() or 2),
            "spark_worker_memory": os.environ.get("MLRECS_SPARK_WORKER_MEMORY") or "8g",
        }
        self._save_config(cfg)
        return cfg

    def _save_config(self, cfg: dict) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(json.dumps(cfg, indent=2))
        self.config_file.chmod(0o600)

    def _ensure(self, key: str, make: Callable[[], object]):
        """A config value added on first use, so stacks created before it existed gain it."""
        cfg = self.config()
        if key not in cfg:
            cfg[key] = make()
            self._save_config(cfg)
        return cfg[key]

    def seaweed_ports(self) -> dict[str, int]:
        return self._ensure("seaweed_ports", lambda: {
            name: (self.config()["s3_port"] if name == "s3" else _free_port()) for name in SEAWEED_PORTS})

    def s3_keys(self, identity: str) -> tuple[str, str]:
        """(access key, secret key) of one of S3_IDENTITIES, generated on first use."""
        keys = self._ensure("s3_identities", lambda: {
            name: [f"mlrecs-{name}-{secrets.token_hex(4)}", secrets.token_hex(20)] for name in S3_IDENTITIES})
        return tuple(keys[identity])

    def airflow_secret(self) -> str:
        """One signing secret for every Airflow process (API tokens of tasks, UI sessions);
        added on first use to stacks created before the services existed."""
        return self._ensure("airflow_secret", lambda: secrets.token_hex(24))

    def airflow_url(self) -> str:
        return f"http://{HOST}:{self.config()['airflow_api_port']}"

    # -- connection details shared by Airflow, tests and `make` ------------------------------
    def spark_master_url(self) -> str:
        return f"spark://{HOST}:{self.config()['spark_master_port']}"

    def postgres_dsn(self, database: str = PG_DATABASE, role: str = PG_USER) -> str:
        cfg = self.config()
        password = {PG_USER: cfg["postgres_password"], PG_WRITER: self.writer_password()}.get(role) \
            or self.reader_password()
        return f"postgresql://{role}:{password}@{HOST}:{cfg['postgres_port']}/{database}"

    def reader_password(self) -> str:
        return self._ensure("postgres_reader_password", lambda: secrets.token_hex(12))

    def writer_password(self) -> str:
        return self._ensure("postgres_writer_password", lambda: secrets.token_hex(12))

    def s3_endpoint(self) -> str:
        return f"http://{HOST}:{self.config()['s3_port']}"

    def mirror_url(self) -> str:
        return f"http://{HOST}:{self.config()['mirror_port']}"

    def mirror_dir(self) -> Path | None:
        """The real MovieLens archives served in place of GroupLens (the shared data folder)."""
        configured = os.environ.get("MLRECS_MIRROR_DIR")
        path = Path(configured) if configured else self.settings.project_root.parent / "shared" / "data"
        return path if path.is_dir() else None

    def generated_dir(self) -> Path:
        return self.settings.generated_dir

    def mirror_dirs(self) -> list[Path]:
        return [d for d in (self.mirror_dir(), self.generated_dir()) if d is not None]

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
        env["MLRECS_MIRROR_URL"] = self.mirror_url()
        # the real releases come from the mirror only when it has them; generated ones always do
        if self.mirror_dir() and not os.environ.get("MLRECS_BASE_URL"):
            env["MLRECS_BASE_URL"] = self.mirror_url()
        return env

    # -- process bookkeeping ---------------------------------------------------------------
    def _pid_file(self, name: str) -> Path:
        return self.state / "run" / f"{name}.pid"

    def _log_file(self, name: str) -> Path:
        return self.state / "logs" / f"{name}.log"

    def running_pid(self, name: str, marker: str) -> int | None:
        """The recorded pid of `name`, if that process is alive and is still ours."""
        pid_file = self._pid_file(name)
        if not pid_file.exists():
            return None
        try:
            pid = int(pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (ValueError, FileNotFoundError, ProcessLookupError):
            return None
        return pid if marker in cmdline else None

    def _spawn(self, name: str, argv: list[str], env: dict | None = None, user: str | None = None) -> int:
        self._log_file(name).parent.mkdir(parents=True, exist_ok=True)
        self._pid_file(name).parent.mkdir(parents=True, exist_ok=True)
        log = open(self._log_file(name), "ab")
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # survives the shell that ran `make up`
            user=user,
            cwd=self.state,
        )
        self._pid_file(name).write_text(str(proc.pid))
        return proc.pid

    def _wait(self, what: str, ready: Callable[[], bool], name: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            time.sleep(0.5)
        tail = ""
        if self._log_file(name).exists():
            tail = "\n".join(self._log_file(name).read_text(errors="replace").splitlines()[-20:])
        raise StackError(f"{what} did not become ready within {timeout:.0f}s; log {self._log_file(name)}:\n{tail}")

    # -- services --------------------------------------------------------------------------
    def _spark_env(self) -> dict:
        import pyspark

        home = Path(pyspark.__file__).parent
        return {
            "SPARK_HOME": str(home),
            "SPARK_LOCAL_IP": HOST,
            "SPARK_LOG_DIR": str(self.state / "logs"),
            "SPARK_WORKER_DIR": str(self.state / "spark" / "work"),
            "PYSPARK_PYTHON": sys.executable,
        }

    def _spark_class(self) -> str:
        return str(Path(self._spark_env()["SPARK_HOME"]) / "bin" / "spark-class")

    def _master_json(self) -> dict | None:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{self.config()['spark_master_ui_port']}/json/", timeout=2) as r:
                return json.loads(r.read())
        except OSError:
            return None

    def start_spark(self) -> None:
        cfg = self.config()
        if not self.running_pid("spark-master", "deploy.master.Master"):
            self._spawn(
                "spark-master",
                [self._spark_class(), "org.apache.spark.deploy.master.Master", "--host", HOST,
                 "--port", str(cfg["spark_master_port"]), "--webui-port", str(cfg["spark_master_ui_port"])],
                env=self._spark_env(),
            )
            self._wait("Spark master", lambda: self._master_json() is not None, "spark-master")
        if not self.running_pid("spark-worker", "deploy.worker.Worker"):
            (self.state / "spark" / "work").mkdir(parents=True, exist_ok=True)
            self._spawn(
                "spark-worker",
                [self._spark_class(), "org.apache.spark.deploy.worker.Worker", "--host", HOST,
                 "--cores", str(cfg["spark_worker_cores"]), "--memory", cfg["spark_worker_memory"],
                 "--webui-port", str(cfg["spark_worker_ui_port"]),
                 "--work-dir", str(self.state / "spark" / "work"), self.spark_master_url()],
                env=self._spark_env(),
            )
        self._wait(
            "Spark worker registration",
            lambda: bool((self._master_json() or {}).get("aliveworkers")),
            "spark-worker",
        )

    def _pg_user(self) -> str | None:
        """PostgreSQL refuses to run as root; as root, run it as the `postgres` system user."""
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise StackError("running as root, but there is no 'postgres' user to run PostgreSQL as") from None
        return "postgres"

    def start_postgres(self) -> None:
        cfg = self.config()
        pg_bin = postgres_bin_dir()
        data = self.state / "postgres" / "data"
        sockets = self.state / "postgres" / "run"
        user = self._pg_user()
        if not (data / "PG_VERSION").exists():
            data.mkdir(parents=True, exist_ok=True)
            sockets.mkdir(parents=True, exist_ok=True)
            pwfile = self.state / "postgres" / "superuser.pw"
            pwfile.write_text(cfg["postgres_superuser_password"])
            if user:
                for path in (data.parent, data, sockets, pwfile):
                    shutil.chown(path, user, user)
            subprocess.run(
                [str(pg_bin / "initdb"), "-D", str(data), "-U", "postgres", f"--pwfile={pwfile}",
                 "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C"],
                check=True, capture_output=True, user=user,
            )
            pwfile.unlink()
        if not self.running_pid("postgres", str(data)):
            # a postmaster.pid left by a killed server would block the start
            stale = data / "postmaster.pid"
            if stale.exists() and not _port_open(cfg["postgres_port"]):
                stale.unlink()
            self._spawn(
                "postgres",
                [str(pg_bin / "postgres"), "-D", str(data), "-p", str(cfg["postgres_port"]),
                 "-h", HOST, "-k", str(sockets)],
                user=user,
            )
            self._wait("PostgreSQL", lambda: _port_open(cfg["postgres_port"]) and self._pg_ready(), "postgres")
        self._bootstrap_postgres()

    def _superuser_connect(self):
        import psycopg

        return psycopg.connect(
            host=str(self.state / "postgres" / "run"), port=self.config()["postgres_port"],
            user="postgres", dbname="postgres", autocommit=True, connect_timeout=3,
        )

    def _pg_ready(self) -> bool:
        try:
            with self._superuser_connect():
                return True
        except Exception:
            return False

    def _bootstrap_postgres(self) -> None:
        from psycopg import sql

        password = self.config()["postgres_password"]
        with self._superuser_connect() as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (PG_USER,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(
                sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(PG_USER), sql.Literal(password))
            )
            for database in (PG_DATABASE, AIRFLOW_DATABASE):
                if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
                    conn.execute(
                        sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(PG_USER))
                    )
            for role, password in ((PG_READER, self.reader_password()), (PG_WRITER, self.writer_password())):
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
                conn.execute(sql.SQL(("ALTER" if exists else "CREATE") + " ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(password)))
            conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(AIRFLOW_DATABASE)))
            for role in (PG_READER, PG_WRITER):
                conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                    sql.Identifier(PG_DATABASE), sql.Identifier(role)))

    def _s3_identities(self) -> dict:
        bucket_grants = [f"{action}:{BUCKET}" for action in ("Read", "List", "Write", "Tagging")]
        reader_grants = [f"{action}:{BUCKET}/{where}recommendations/*" for action in ("Read", "List")
                         for where in ("", "*/")]
        grants = {"admin": ["Admin", "Read", "List", "Write", "Tagging"], "pipeline": bucket_grants,
                  "reader": reader_grants}
        return {"identities": [
            {"name": name, "credentials": [dict(zip(("accessKey", "secretKey"), self.s3_keys(name)))],
             "actions": grants[name]} for name in S3_IDENTITIES]}

    def start_s3(self) -> None:
        """SeaweedFS (`weed server -s3`): master, volume server, filer and S3 gateway in one
        process, its volumes under s3/data so objects survive `down` and `up`."""
        ports = self.seaweed_ports()
        legacy = self.running_pid("s3", "moto_server")  # stacks made before SeaweedFS replaced moto
        if legacy:
            _stop(legacy, signal.SIGTERM)
        if not self.running_pid("s3", "weed server"):
            root = self.state / "s3"
            (root / "data").mkdir(parents=True, exist_ok=True)
            config = root / "identities.json"
            config.write_text(json.dumps(self._s3_identities(), indent=2))
            config.chmod(0o600)
            weed = str(Path(sys.executable).parent / "weed")
            self._spawn("s3", [
                weed, "server", f"-ip={HOST}", f"-ip.bind={HOST}", f"-dir={root / 'data'}", "-s3",
                f"-s3.config={config}", "-s3.port.iceberg=0", "-s3.port.lance=0", "-metricsPort=0",
                *(f"-{name.replace('_grpc', '.port.grpc')}={port}" if name.endswith("_grpc")
                  else f"-{name}.port={port}" for name, port in ports.items())])
        # after a start the master elects itself leader and the volume server registers; until
        # then a write fails, so readiness is a real write, not an open port
        self._wait("S3 endpoint (SeaweedFS)", self._s3_writable, "s3", timeout=120)

    def s3_client(self, identity: str = "pipeline"):
        import boto3
        from botocore.config import Config

        access_key, secret_key = self.s3_keys(identity)
        return boto3.client(
            "s3", endpoint_url=self.s3_endpoint(), region_name="us-east-1",
            aws_access_key_id=access_key, aws_secret_access_key=secret_key,
            config=Config(retries={"max_attempts": 2}, connect_timeout=3, read_timeout=20),
        )

    def _s3_writable(self) -> bool:
        try:
            admin = self.s3_client("admin")
            if BUCKET not in {b["Name"] for b in admin.list_buckets().get("Buckets", [])}:
                admin.create_bucket(Bucket=BUCKET)
            pipeline = self.s3_client("pipeline")
            pipeline.put_object(Bucket=BUCKET, Key="_stack/ready", Body=b"ok")
            pipeline.delete_object(Bucket=BUCKET, Key="_stack/ready")
            return True
        except Exception:
            return False

    def start_mirror(self) -> None:
        port = self.config()["mirror_port"]
        if self.running_pid("mirror", MIRROR_MODULE):
            return
        self.generated_dir().mkdir(parents=True, exist_ok=True)
        self._spawn("mirror", [sys.executable, "-m", MIRROR_MODULE, "--bind", HOST, "--port", str(port),
                               *map(str, self.mirror_dirs())])
        self._wait("MovieLens mirror", lambda: _port_open(port), "mirror")

    def migrate_airflow(self) -> None:
        env = {**os.environ, **self.environment()}
        Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
        airflow = str(Path(sys.executable).parent / "airflow")
        result = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True)
        self._log_file("airflow-migrate").parent.mkdir(parents=True, exist_ok=True)
        self._log_file("airflow-migrate").write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            raise StackError(f"airflow db migrate failed; see {self._log_file('airflow-migrate')}:\n{result.stderr[-2000:]}")

    def airflow_password(self) -> str:
        return self.config()["airflow_admin_password"]

    def start_airflow(self, extra_env: dict | None = None) -> None:
        """api-server, scheduler, dag-processor and triggerer on 127.0.0.1, against the stack.
        `extra_env` overrides settings for these processes (the tests give them their own lake
        and registry schema)."""
        env = {**self.environment(), **(extra_env or {})}
        passwords = Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
        passwords.parent.mkdir(parents=True, exist_ok=True)
        passwords.write_text(json.dumps({AIRFLOW_ADMIN: self.airflow_password()}))
        passwords.chmod(0o600)
        airflow = str(Path(sys.executable).parent / "airflow")
        for name, args in AIRFLOW_SERVICES.items():
            if not self.running_pid(name, _marker(args)):
                self._spawn(name, [airflow, *args], env=env)
        self._wait("Airflow API server", self._airflow_healthy, "airflow-api-server", timeout=120)

    def _airflow_healthy(self) -> bool:
        return _http_ok(f"{self.airflow_url()}/api/v2/monitor/health")

    def stop_airflow(self) -> list[str]:
        """Each service with its whole process group (API workers, executor workers, tasks)."""
        stopped = []
        for name, args in AIRFLOW_SERVICES.items():
            pid = self.running_pid(name, _marker(args))
            if pid is not None:
                _stop(pid, signal.SIGTERM, whole_group=True)
                stopped.append(name)
            self._pid_file(name).unlink(missing_ok=True)
        return stopped

    # -- the recommendations API (`make serve`) ----------------------------------------------
    def api_url(self) -> str:
        return f"http://{HOST}:{self._ensure('api_port', _free_port)}"

    def start_api(self, extra_env: dict | None = None, workers: int = 2) -> None:
        """uvicorn on 127.0.0.1, reading as the apps' read-only role; `extra_env` as for Airflow."""
        port = self._ensure("api_port", _free_port)
        if not self.running_pid("api", API_MODULE):
            env = {**self.environment(), **(extra_env or {})}
            self._spawn("api", [sys.executable, "-m", API_MODULE, "--host", HOST, "--port", str(port),
                                "--workers", str(workers)], env=env)
        self._wait("recommendations API", lambda: _http_ok(f"{self.api_url()}/healthz"), "api", timeout=60)

    def stop_api(self) -> bool:
        pid = self.running_pid("api", API_MODULE)
        if pid is not None:
            _stop(pid, signal.SIGTERM, whole_group=True)
        self._pid_file("api").unlink(missing_ok=True)
        return pid is not None

    def airflow_status(self) -> dict[str, int | None]:
        return {name: self.running_pid(name, _marker(args)) for name, args in AIRFLOW_SERVICES.items()}

    # -- whole stack -----------------------------------------------------------------------
    SERVICES = {
        "spark-master": "deploy.master.Master",
        "spark-worker": "deploy.worker.Worker",
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
        if airflow:
            self.migrate_airflow()

    def down(self) -> list[str]:
        stopped = self.stop_airflow() + (["api"] if self.stop_api() else [])
        # workers before the master, so the worker does not spin trying to reconnect
        for name in ["spark-worker", "spark-master", "mirror", "s3", "postgres"]:
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
        return {name: self.running_pid(name, marker) for name, marker in self.SERVICES.items()}


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _marker(args: list[str]) -> str:
    return args[0].replace("-", "_") if args[0] == "api-server" else args[0]


def _stop(pid: int, first: signal.Signals, whole_group: bool = False, timeout: float = 30) -> None:
    """Ask politely (`first`, to the process or its whole group), wait, then SIGKILL whatever is
    left: the group when `pid` leads one (or `whole_group`), else the process."""
    try:
        os.killpg(pid, first) if whole_group else os.kill(pid, first)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists() and not _is_zombie(pid):
        time.sleep(0.2)
    if whole_group:
        try:
            os.killpg(pid, signal.SIGKILL)  # children the leader left behind
        except ProcessLookupError:
            pass
    elif Path(f"/proc/{pid}").exists() and not _is_zombie(pid):
        os.killpg(pid, signal.SIGKILL) if _is_group_leader(pid) else os.kill(pid, signal.SIGKILL)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (FileNotFoundError, IndexError):
        return True


def _is_group_leader(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m movielens_recs.devstack", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down", "status", "env", "airflow-up", "airflow-down",
                                            "serve", "serve-down"])
    parser.add_argument("--no-airflow", action="store_true", help="up: skip the Airflow metadata DB migration")
    args = parser.parse_args(argv)
    stack = Stack(Settings.from_env())
    try:
        if args.command == "up":
            stack.up(airflow=not args.no_airflow)
            cfg = stack.config()
            print(f"Spark master   {stack.spark_master_url()}  (UI http://{HOST}:{cfg['spark_master_ui_port']})")
            print(f"PostgreSQL     {HOST}:{cfg['postgres_port']}  databases {PG_DATABASE}, {AIRFLOW_DATABASE}")
            print(f"S3 (SeaweedFS) {stack.s3_endpoint()}  bucket {BUCKET}, data {stack.state / 's3' / 'data'}")
            print("               keys: pipeline AWS_ACCESS_KEY_ID, apps MLRECS_READER_AWS_ACCESS_KEY_ID (make env)")
            served = ", ".join(map(str, stack.mirror_dirs()))
            print(f"MovieLens      {stack.mirror_url()}  (serving {served})")
            print(f"Airflow home   {stack.environment()['AIRFLOW_HOME']}")
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
