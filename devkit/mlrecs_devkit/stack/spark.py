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
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from mlrecs_devkit.stack.core import HOST, StackBase

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

    # -- class-data-sharing archives -------------------------------------------------------
    def class_archive_dir(self) -> Path:
        """One folder per JDK and Spark build, so that an upgrade records new archives."""
        return self.state / "spark" / "cds" / self._archive_key

    @functools.cached_property
    def _archive_key(self) -> str:
        import pyspark

        java = shutil.which("java", path=os.pathsep.join(
            filter(None, [f"{os.environ['JAVA_HOME']}/bin" if os.environ.get("JAVA_HOME") else None,
                          os.environ.get("PATH", "")])))
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
