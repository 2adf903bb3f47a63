"""Shared fixtures. Tiers by folder: unit (no services), integration (the real local stack),
e2e (the real Airflow running the DAG on the stack)."""

from __future__ import annotations

import hashlib
import logging
import http.server
import os
import shutil
import sys
import threading
from pathlib import Path

import pytest

from movielens_recs.config import Settings

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

# Importing Airflow in the tests must never touch ~/airflow or load the example DAGs.
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".local" / "airflow-tests"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
# A SparkSession made in-process (not by spark-submit) takes its workers' Python from the
# environment, not from spark.pyspark.python: use this interpreter, which has pandas and numpy.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
# py4j logs "closing" from a finalizer at exit, after pytest closed its log streams
logging.getLogger("py4j").setLevel(logging.WARNING)


def pytest_collection_modifyitems(config, items):
    for item in items:
        tier = Path(str(item.fspath)).relative_to(ROOT / "tests").parts[0]
        if tier in ("integration", "e2e"):
            item.add_marker(getattr(pytest.mark, tier))


# -- a local HTTP server standing in for files.grouplens.org -------------------------------
class _Handler(http.server.SimpleHTTPRequestHandler):
    truncate_to: dict[str, int] = {}

    def log_message(self, *args):
        pass

    def do_GET(self):
        name = self.path.lstrip("/")
        cut = self.truncate_to.get(name)
        if cut is None:
            return super().do_GET()
        data = (Path(self.directory) / name).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))  # announce all, send less
        self.end_headers()
        self.wfile.write(data[:cut])
        self.wfile.flush()
        self.close_connection = True


class DatasetServer:
    """Serves a folder on 127.0.0.1; `truncate(name, n)` makes it cut that file after n bytes."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        handler = type("Handler", (_Handler,), {"truncate_to": {}})
        self._handler = handler
        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), lambda *a, **k: handler(*a, directory=str(self.directory), **k)
        )
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def truncate(self, name: str, size: int) -> None:
        self._handler.truncate_to[name] = size

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def dataset_server(tmp_path):
    """An empty served folder: tests put archives (and their .md5) into `server.directory`."""
    folder = tmp_path / "served"
    folder.mkdir()
    with DatasetServer(folder) as server:
        yield server


@pytest.fixture(scope="session")
def movielens_server():
    """The real ml-latest-small archive and its checksum, from ../shared/data."""
    if not (SHARED_DATA / "ml-latest-small.zip").exists():
        pytest.fail(f"{SHARED_DATA}/ml-latest-small.zip is missing: clone the project beside shared/")
    with DatasetServer(SHARED_DATA) as server:
        yield server


def write_md5(archive: Path, form: str = "bsd") -> Path:
    digest = hashlib.md5(archive.read_bytes()).hexdigest()
    line = f"MD5 ({archive.name}) = {digest}\n" if form == "bsd" else f"{digest}  {archive.name}\n"
    target = archive.with_name(archive.name + ".md5")
    target.write_text(line)
    return target


@pytest.fixture
def settings_factory(tmp_path):
    """Settings whose lake, downloads and reports live in this test's tmp folder."""

    def make(base_url: str = "http://127.0.0.1:9", **overrides) -> Settings:
        env = {
            "MLRECS_STATE_DIR": str(tmp_path / "state"),
            "MLRECS_BASE_URL": base_url,
            "MLRECS_LAKE_URI": str(tmp_path / "lake"),
            "MLRECS_HTTP_RETRIES": "0",
            "MLRECS_HTTP_READ_TIMEOUT": "10",
            **{k: str(v) for k, v in overrides.items()},
        }
        return Settings.from_env(env)

    return make


# -- the local stack ----------------------------------------------------------------------
@pytest.fixture(scope="session")
def stack():
    """The real local stack; started here if it is not running, and then stopped at the end."""
    from mlrecs_devkit.stack import Stack

    stack = Stack(Settings.from_env())
    was_running = all(stack.status().values())
    stack.up()
    yield stack
    remove_test_objects(stack)
    if not was_running and not os.environ.get("MLRECS_KEEP_STACK"):
        stack.down()


# every S3 prefix a test publishes under starts with one of these (what `make run` publishes does not)
TEST_PREFIXES = ("tests/", "e2e/")


def remove_test_objects(stack) -> int:
    """Delete what the tests wrote to the stack's S3 store, so that the store does not grow with
    every run of the suite."""
    from mlrecs_devkit.stack import BUCKET

    client, removed = stack.s3_client(), 0
    for prefix in TEST_PREFIXES:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=BUCKET, Delete={"Objects": keys})
                removed += len(keys)
    return removed


@pytest.fixture(scope="session")
def stack_env(stack) -> dict[str, str]:
    return {**os.environ, **stack.environment()}


def cluster_session(stack, app_name: str):
    """A SparkSession attached to the stack's standalone cluster with the pipeline's settings and
    code (for module-scoped fixtures). Stop it when done: while it lives it holds the worker's
    cores, and spark-submits would wait for them."""
    from pyspark.sql import SparkSession

    from movielens_recs.spark_submit import build_py_files, spark_conf

    settings = Settings.from_env()
    builder = SparkSession.builder.master(stack.spark_master_url()).appName(app_name)
    for key, value in spark_conf(settings).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.addPyFile(str(build_py_files(settings.state_dir / "build")))
    return session


@pytest.fixture
def copy_shared(tmp_path):
    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copy(SHARED_DATA / name, target)
        return target

    return copy


LOOPBACK = {
    "0100007F",                          # 127.0.0.1 in /proc/net/tcp
    "0000000000000000FFFF00000100007F",  # ::ffff:127.0.0.1 in /proc/net/tcp6
    "00000000000000000000000001000000",  # ::1
}


def listening_addresses(pid: int) -> list[str]:
    """Local addresses of the sockets `pid` listens on, read from /proc (no ss or netstat needed)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    addresses = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                addresses.append(fields[1])
    return addresses


def process_group(leader: int) -> list[int]:
    """Every live process in `leader`'s process group (a service and the children it forked)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == leader:  # the fifth field of /proc/<pid>/stat: the process group
            members.append(int(stat.parent.name))
    return members
