"""Spark standalone: a master and a worker from the pyspark wheel's own jars (`spark-class`),
since the wheel has no start-*.sh scripts.

Every Spark application starts two JVMs (driver and executor) that spend seconds loading the
same few thousand classes. `up` therefore records class-data-sharing archives once (`-XX:
ArchiveClassesAtExit` on a short warm-up job, devkit/spark_jobs/cds_warmup.py), and the stack's
environment hands them to every job through MLRECS_SPARK_CONF (`-XX:SharedArchiveFile`). A JVM
whose archive does not match its JDK or class path ignores it and loads classes as before.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from mlrecs_devkit.stack.core import HOST, StackBase, _free_port, _stop
from mlrecs_devkit.stack.prerequisites import _java_path

WARMUP_JOB = Path(__file__).resolve().parents[2] / "spark_jobs" / "cds_warmup.py"


class Spark(StackBase):
    def spark_master_url(self) -> str:
        return f"spark://{HOST}:{self.config()['spark_master_port']}"

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

    def spark_workers(self) -> list[dict]:
        """The workers `up` runs: `make up WORKERS=n` (kept in stack.json) splits the machine's
        worker cores and memory evenly among n of them, each with its own UI port."""
        cfg = self.config()
        count = int(cfg.get("spark_workers", 1))
        extra_ports = self._ensure("spark_worker_extra_ui_ports", list)
        while len(extra_ports) < count - 1:
            extra_ports.append(_free_port())
            self._save_config({**self.config(), "spark_worker_extra_ui_ports": extra_ports})
        ports = [cfg["spark_worker_ui_port"], *extra_ports]
        memory_mb = _megabytes(cfg["spark_worker_memory"]) // count
        return [{"name": "spark-worker" if i == 0 else f"spark-worker-{i + 1}",
                 "cores": max(1, cfg["spark_worker_cores"] // count), "memory": f"{memory_mb}m",
                 "ui_port": ports[i]} for i in range(count)]

    def set_spark_workers(self, count: int) -> None:
        if count < 1:
            raise ValueError(f"WORKERS must be at least 1, got {count}")
        self._save_config({**self.config(), "spark_workers": count})

    def spark_worker_pids(self) -> dict[str, int | None]:
        """Every worker `up` may have started, including those of an earlier, larger layout."""
        names = {w["name"] for w in self.spark_workers()}
        names |= {path.stem for path in (self.state / "run").glob("spark-worker*.pid")}
        return {name: self.running_pid(name, "deploy.worker.Worker") for name in sorted(names)}

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
        workers = self.spark_workers()
        wanted = {w["name"] for w in workers}
        for name, pid in self.spark_worker_pids().items():
            if pid is not None and name not in wanted:  # left over from a layout with more workers
                _stop(pid, signal.SIGTERM)
                self._pid_file(name).unlink(missing_ok=True)
        for worker in workers:
            shape = f"--cores {worker['cores']} --memory {worker['memory']}"
            pid = self.running_pid(worker["name"], "deploy.worker.Worker")
            if pid is not None and shape not in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode():
                _stop(pid, signal.SIGTERM)  # another layout: restart with this one's share
                pid = None
            if pid is None:
                work_dir = self.state / "spark" / "work"
                work_dir.mkdir(parents=True, exist_ok=True)
                self._spawn(
                    worker["name"],
                    [self._spark_class(), "org.apache.spark.deploy.worker.Worker", "--host", HOST,
                     *shape.split(), "--webui-port", str(worker["ui_port"]),
                     "--work-dir", str(work_dir), self.spark_master_url()],
                    env=self._spark_env(),
                )

        def registered() -> bool:
            alive = [w for w in (self._master_json() or {}).get("workers", []) if w.get("state") == "ALIVE"]
            return sorted(w.get("webuiaddress", "").rsplit(":", 1)[-1] for w in alive) == \
                sorted(str(w["ui_port"]) for w in workers)

        self._wait("Spark worker registration", registered, workers[-1]["name"])

    # -- class-data-sharing archives -------------------------------------------------------
    def class_archive_dir(self) -> Path:
        """One folder per JDK and Spark build, so that an upgrade records new archives."""
        return self.state / "spark" / "cds" / self._archive_key

    @functools.cached_property
    def _archive_key(self) -> str:
        import pyspark

        java = shutil.which("java", path=_java_path())
        version = subprocess.run([java or "java", "-version"], capture_output=True, text=True).stderr if java else ""
        return hashlib.sha256(f"{version}|{pyspark.__version__}|{pyspark.__file__}".encode()).hexdigest()[:12]

    def spark_jvm_conf(self) -> dict[str, str]:
        """The Spark settings that hand the archives to a job's JVMs; none until they exist."""
        folder = self.class_archive_dir()
        driver, executor = folder / "driver.jsa", folder / "executor.jsa"
        if not (driver.exists() and executor.exists()):
            return {}
        return {"spark.driver.extraJavaOptions": f"-XX:SharedArchiveFile={driver}",
                "spark.executor.extraJavaOptions": f"-XX:SharedArchiveFile={executor}"}

    def record_class_archives(self, timeout: float = 300) -> bool:
        """Run the warm-up job once with archiving JVMs. A failure only costs the speed-up: it
        is logged, and jobs start without archives."""
        folder = self.class_archive_dir()
        if self.spark_jvm_conf():
            return True
        folder.mkdir(parents=True, exist_ok=True)
        partial = {name: folder / f"{name}.jsa.{os.getpid()}.tmp" for name in ("driver", "executor")}
        log = self._log_file("spark-cds-warmup")
        started = time.monotonic()
        with tempfile.TemporaryDirectory(dir=self.state) as scratch, open(log, "wb") as out:
            # not spark_submit_argv with the pipeline's settings: tried, its executor loaded more
            # classes and wrote no archive; it was still writing when the worker stopped it
            # (a worker kills an executor that has not exited within about 10 s)
            argv = [str(Path(sys.executable).parent / "spark-submit"), "--master", self.spark_master_url(),
                    "--conf", f"spark.driver.extraJavaOptions=-XX:ArchiveClassesAtExit={partial['driver']}",
                    "--conf", f"spark.executor.extraJavaOptions=-XX:ArchiveClassesAtExit={partial['executor']}",
                    "--conf", "spark.sql.session.timeZone=UTC", "--conf", "spark.ui.showConsoleProgress=false",
                    "--conf", "spark.sql.execution.arrow.pyspark.enabled=true",
                    "--conf", f"spark.pyspark.python={sys.executable}",
                    "--conf", f"spark.sql.warehouse.dir={scratch}/warehouse",
                    str(WARMUP_JOB), f"file://{scratch}"]
            try:
                code = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **self._spark_env()},
                                      cwd=scratch, timeout=timeout).returncode
            except subprocess.TimeoutExpired:
                code = None
        # the executor writes its archive as it exits, which may be after the driver has
        while time.monotonic() < started + timeout and _jvm_writing(partial["executor"]):
            time.sleep(0.5)
        if code != 0 or not all(path.exists() and path.stat().st_size for path in partial.values()):
            for path in partial.values():
                path.unlink(missing_ok=True)
            print(f"warning: no class-data-sharing archives (warm-up job exit {code}; log {log}); "
                  "Spark jobs start without them", file=sys.stderr)
            return False
        for name, path in partial.items():
            os.replace(path, folder / f"{name}.jsa")
        return True


def _jvm_writing(archive: Path) -> bool:
    """Whether a JVM told to write `archive` at its exit is still alive."""
    needle = f"ArchiveClassesAtExit={archive}".encode()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if needle in cmdline.read_bytes():
                return True
        except OSError:
            continue
    return False


def _megabytes(size: str) -> int:
    """Spark's memory strings ("8g", "4096m") in MiB."""
    size = str(size).strip().lower()
    units = {"t": 1024**2, "g": 1024, "m": 1, "k": 1 / 1024}
    if size[-1:] in units:
        return int(float(size[:-1]) * units[size[-1]])
    return int(size) // (1024 * 1024)  # bytes
