"""What the stack needs from the machine, checked before anything starts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path


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
