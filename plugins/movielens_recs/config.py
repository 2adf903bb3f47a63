"""Settings read from the environment (`MLRECS_*`), with defaults for the local stack.

One place for every knob, so that the DAG, the Spark jobs and the tests agree on where things
live. Airflow connections (spark, postgres, aws) are not here: Airflow owns those.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

GROUPLENS_BASE_URL = "https://files.grouplens.org/datasets/movielens"
DEFAULT_DATASET = "ml-latest-small"

# plugins/movielens_recs/config.py -> project root
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def _int(env: Mapping[str, str], key: str, default: int) -> int:
    raw = env.get(key)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{key} must be an integer, got {raw!r}") from None


def _float(env: Mapping[str, str], key: str, default: float) -> float:
    raw = env.get(key)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{key} must be a number, got {raw!r}") from None


def _json_object(env: Mapping[str, str], key: str) -> dict:
    raw = env.get(key)
    if raw in (None, ""):
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{key} must be a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{key} must be a JSON object, got {type(value).__name__}")
    return {str(k): str(v) for k, v in value.items()}


@dataclass(frozen=True)
class Settings:
    project_root: Path
    state_dir: Path
    base_url: str = GROUPLENS_BASE_URL
    lake_uri: str = ""
    download_dir: Path = field(default=Path())
    data_docs_dir: Path = field(default=Path())
    expectations_dir: Path = field(default=Path())
    rules_dir: Path = field(default=Path())  # rules/<dataset>.yaml: movies never recommended
    model_store_uri: str = ""
    db_schema: str = "mlrecs"
    # the apps' read-only PostgreSQL role, granted SELECT on every namespace's reader views
    db_reader_role: str = "mlrecs_reader"
    # the apps' role that may only record rating events (foldin/events.py)
    db_writer_role: str = "mlrecs_writer"
    # how often the fold-in DAG folds new rating events into the served model (cron or preset)
    fold_in_schedule: str = "*/15 * * * *"
    # more users with new events than this in one fold-in: computed on Spark, not in the task
    fold_in_spark_users: int = 20_000
    # a daily run still unfinished this long after it was queued calls the notifier (a DeadlineAlert)
    run_deadline_seconds: float = 7200.0
    # "module:callable" called with (context, summary) on a failure, a rejection or a missed
    # deadline (orchestration/notify.py); empty: the alert is only logged
    notifier: str = ""
    checkpoint_dir: str = ""
    http_connect_timeout: float = 10.0
    http_read_timeout: float = 60.0
    http_retries: int = 3
    # the whole transfer of an archive: a deadline, and a floor on its average rate after 10 s
    http_deadline: float = 3600.0
    http_min_bytes_per_second: float = 10_000.0
    # Zip-bomb guards: ml-32m unpacks to under 1 GiB at a ratio near 4, so these leave
    # a wide margin for real data while refusing archives that would fill the disk.
    max_uncompressed_bytes: int = 16 * 1024**3
    max_compression_ratio: float = 100.0
    # Spark resources for every job the DAG submits; extra settings as JSON in MLRECS_SPARK_CONF.
    spark_driver_memory: str = "2g"
    spark_executor_memory: str = "4g"
    # off-heap room (shuffle buffers, metaspace, Python workers' share) a resource manager grants
    # on top of the heap; ALS at 25M ratings held 0.6 GiB beyond its 4 GiB heap
    spark_executor_memory_overhead: str = "1g"
    spark_executor_cores: int = 2
    # a job given no executor this long (at its start, or after losing them all) fails, naming
    # the master and what it asked for, instead of waiting for the task's execution timeout
    spark_executor_wait_seconds: float = 120.0
    spark_conf: dict = field(default_factory=dict)
    # Recommendations: how many per user, where they are published, how many versions are kept.
    top_n: int = 10
    publish_sinks: tuple[str, ...] = ("postgres", "s3")
    publish_keep: int = 3
    s3_bucket: str = "mlrecs"
    s3_prefix: str = ""
    # The gate's thresholds from MLRECS_GATE_<NAME> (e.g. MLRECS_GATE_NDCG_MULTIPLE), each
    # overriding the dataset's default unless a run's param overrides it (orchestration/modeling.py).
    gate: dict = field(default_factory=dict)

    @property
    def generated_dir(self) -> Path:
        """Where `make data` writes generated archives, and the local mirror serves them from."""
        return self.state_dir / "generated"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        root = Path(env.get("MLRECS_PROJECT_ROOT") or _PACKAGE_ROOT)
        state = Path(env.get("MLRECS_STATE_DIR") or root / ".local")
        lake = (env.get("MLRECS_LAKE_URI") or str(state / "lake")).rstrip("/")
        return cls(
            project_root=root,
            state_dir=state,
            base_url=(env.get("MLRECS_BASE_URL") or GROUPLENS_BASE_URL).rstrip("/"),
            lake_uri=lake,
            model_store_uri=(env.get("MLRECS_MODEL_STORE_URI") or f"{lake}/models").rstrip("/"),
            checkpoint_dir=env.get("MLRECS_SPARK_CHECKPOINT_DIR") or str(state / "spark" / "checkpoints"),
            db_schema=env.get("MLRECS_DB_SCHEMA") or "mlrecs",
            db_reader_role=env.get("MLRECS_DB_READER_ROLE", "mlrecs_reader"),
            db_writer_role=env.get("MLRECS_DB_WRITER_ROLE", "mlrecs_writer"),
            fold_in_schedule=env.get("MLRECS_FOLD_IN_SCHEDULE") or "*/15 * * * *",
            fold_in_spark_users=_int(env, "MLRECS_FOLD_IN_SPARK_USERS", 20_000),
            run_deadline_seconds=_float(env, "MLRECS_RUN_DEADLINE_SECONDS", 7200.0),
            notifier=notifier_spec(env),
            download_dir=Path(env.get("MLRECS_DOWNLOAD_DIR") or state / "downloads"),
            data_docs_dir=Path(env.get("MLRECS_DATA_DOCS_DIR") or state / "data_docs"),
            expectations_dir=Path(env.get("MLRECS_EXPECTATIONS_DIR") or root / "expectations"),
            rules_dir=Path(env.get("MLRECS_RULES_DIR") or root / "rules"),
            http_connect_timeout=_float(env, "MLRECS_HTTP_CONNECT_TIMEOUT", 10.0),
            http_read_timeout=_float(env, "MLRECS_HTTP_READ_TIMEOUT", 60.0),
            http_retries=_int(env, "MLRECS_HTTP_RETRIES", 3),
            http_deadline=_float(env, "MLRECS_HTTP_DEADLINE", 3600.0),
            http_min_bytes_per_second=_float(env, "MLRECS_HTTP_MIN_BYTES_PER_SECOND", 10_000.0),
            max_uncompressed_bytes=_int(env, "MLRECS_MAX_UNCOMPRESSED_BYTES", 16 * 1024**3),
            max_compression_ratio=_float(env, "MLRECS_MAX_COMPRESSION_RATIO", 100.0),
            spark_driver_memory=env.get("MLRECS_SPARK_DRIVER_MEMORY") or "2g",
            spark_executor_memory=env.get("MLRECS_SPARK_EXECUTOR_MEMORY") or "4g",
            spark_executor_memory_overhead=env.get("MLRECS_SPARK_EXECUTOR_MEMORY_OVERHEAD") or "1g",
            spark_executor_cores=_int(env, "MLRECS_SPARK_EXECUTOR_CORES", 2),
            spark_executor_wait_seconds=_float(env, "MLRECS_SPARK_EXECUTOR_WAIT_SECONDS", 120.0),
            spark_conf=_json_object(env, "MLRECS_SPARK_CONF"),
            top_n=_int(env, "MLRECS_TOP_N", 10),
            publish_sinks=parse_sinks(env.get("MLRECS_PUBLISH_SINKS") or "postgres,s3"),
            publish_keep=_int(env, "MLRECS_PUBLISH_KEEP", 3),
            s3_bucket=env.get("MLRECS_S3_BUCKET") or "mlrecs",
            s3_prefix=(env.get("MLRECS_S3_PREFIX") or "").strip("/"),
            gate=_gate(env),
        )


def notifier_spec(env: Mapping[str, str]) -> str:
    """MLRECS_NOTIFIER on its own: the notifier reads only this, so that an alert about a task
    that failed on another bad setting still goes out."""
    spec = (env.get("MLRECS_NOTIFIER") or "").strip()
    module, sep, name = spec.partition(":")
    if spec and not (sep and module and name.isidentifier()):
        raise ValueError(f"MLRECS_NOTIFIER must be 'module:callable', got {spec!r}")
    return spec


def _gate(env: Mapping[str, str]) -> dict:
    from movielens_recs.gate import GateConfig

    return {name: _float(env, f"MLRECS_GATE_{name.upper()}", 0.0) for name in GateConfig.names()
            if env.get(f"MLRECS_GATE_{name.upper()}") not in (None, "")}


SINKS = ("postgres", "s3")


def parse_sinks(value) -> tuple[str, ...]:
    """`postgres`, `s3`, `postgres,s3` (or a list of those); an empty choice publishes nowhere,
    which is refused: a run that promotes a model must make it visible somewhere."""
    names = value if isinstance(value, (list, tuple)) else str(value).split(",")
    sinks = tuple(dict.fromkeys(name.strip().lower() for name in names if str(name).strip()))
    unknown = [name for name in sinks if name not in SINKS]
    if unknown or not sinks:
        raise ValueError(f"publish sinks must be some of {', '.join(SINKS)}; got {value!r}")
    return sinks
