"""How the pipeline's Spark jobs are submitted: settings, the code they ship, the command.

Kept free of Airflow so that the DAG's operator, the tests and the benchmark submit jobs with
the same settings. The project's code ships with --py-files as a zip built from the package as
it is at submit time, named by its content hash, so that every job runs the code of its own
run and unchanged code is zipped only once.
"""

from __future__ import annotations

import hashlib
import os
import sys
import zipfile
from pathlib import Path

import movielens_recs
from movielens_recs.config import Settings


def spark_conf(settings: Settings) -> dict[str, str]:
    conf = {
        "spark.executor.cores": str(settings.spark_executor_cores),
        "spark.executor.memoryOverhead": settings.spark_executor_memory_overhead,
        # In client mode the driver runs on the Airflow worker; executors use the same
        # interpreter unless the cluster's settings say otherwise.
        "spark.pyspark.python": sys.executable,
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.showConsoleProgress": "false",
        # Spark's default of 200 shuffle partitions is for large clusters; on a few cores it
        # spends its time scheduling empty tasks. Adaptive execution coalesces further.
        "spark.sql.shuffle.partitions": str(max(4, 4 * settings.spark_executor_cores)),
        "spark.sql.adaptive.enabled": "true",
        # toPandas through Arrow: item factors, evaluation lists and the output checks
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # ALS shuffles RDDs of blocks, which Java serialization makes larger and slower
        "spark.serializer": "org.apache.spark.serializer.KryoSerializer",
        "spark.sql.warehouse.dir": str(settings.state_dir / "spark" / "warehouse"),
        # how long a job waits for an executor before it fails (jobs.start_session)
        "spark.mlrecs.executorWaitSeconds": f"{settings.spark_executor_wait_seconds:g}",
    }
    conf.update(settings.spark_conf)
    return conf


PACKAGE_DIR = Path(movielens_recs.__file__).resolve().parent
# The Airflow glue is not needed on the cluster, and importing it there would fail.
_EXCLUDED_DIRS = {"__pycache__", "orchestration"}


def _package_files(package_dir: Path) -> list[Path]:
    files = []
    for dirpath, dirnames, filenames in os.walk(package_dir):
        dirnames[:] = sorted(d for d in dirnames if d not in _EXCLUDED_DIRS)
        files += [Path(dirpath) / f for f in sorted(filenames) if f.endswith(".py")]
    return files


def build_py_files(build_dir: Path, package_dir: Path = PACKAGE_DIR) -> Path:
    """The zip of one package (the product's unless told), for --py-files."""
    files = _package_files(package_dir)
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(package_dir)).encode())
        digest.update(path.read_bytes())
    target = Path(build_dir) / f"{package_dir.name}-{digest.hexdigest()[:12]}.zip"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            zf.write(path, Path(package_dir.name) / path.relative_to(package_dir))
    os.replace(tmp, target)
    return target


def job_path(settings: Settings, job: str) -> Path:
    return settings.project_root / "spark_jobs" / f"{job}.py"


def spark_submit_argv(settings: Settings, master: str, job: str, args: list[str], *,
                      application: Path | None = None, extra_py_files: tuple[Path, ...] = ()) -> list[str]:
    """The spark-submit command line the DAG's operator builds, for use outside Airflow. The
    benchmark passes its own `application` and ships its package in `extra_py_files`."""
    py_files = [build_py_files(settings.state_dir / "build"), *extra_py_files]
    argv = [
        str(Path(sys.executable).parent / "spark-submit"),
        "--master", master,
        "--deploy-mode", "client",
        "--name", f"movielens-{job}",
        "--driver-memory", settings.spark_driver_memory,
        "--executor-memory", settings.spark_executor_memory,
        "--py-files", ",".join(map(str, py_files)),
    ]
    for key, value in spark_conf(settings).items():
        argv += ["--conf", f"{key}={value}"]
    return argv + [str(application or job_path(settings, job)), *args]
