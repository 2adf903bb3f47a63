"""Spark standalone: a master and a worker from the pyspark wheel's own jars (`spark-class`),
since the wheel has no start-*.sh scripts."""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

from mlrecs_devkit.stack.core import HOST, StackBase


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
