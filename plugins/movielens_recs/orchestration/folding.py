"""Task bodies of the fold-in DAG, and the events tables' set-up at publish time: Airflow's
connections and settings turned into the plain arguments of foldin/."""

from __future__ import annotations

import logging
import uuid

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from movielens_recs import registry
from movielens_recs.config import Settings
from movielens_recs.datasets.catalog import dataset_spec
from movielens_recs.errors import PipelineInputError
from movielens_recs.foldin import events
from movielens_recs.foldin.fold import FoldInModel
from movielens_recs.foldin.on_spark import FoldInJob
from movielens_recs.foldin.run import fold_in as fold_in_namespace
from movielens_recs.foldin.run import has_events_table, on_driver
from movielens_recs.lake.filesystem import join, resolve, spark_uri
from movielens_recs.lake.snapshot import SnapshotStore
from movielens_recs.models.store import ModelLayout
from movielens_recs.orchestration.connections import lake_s3_options, postgres_connect
from movielens_recs.orchestration.tasks import fail_without_retry
from movielens_recs.publish import postgres as pg_publish
from movielens_recs.publish.sinks import Namespace
from movielens_recs.recommend import output as recs_output
from movielens_recs.recommend.rules import Rules
from movielens_recs.spark_submit import build_py_files, job_path, spark_conf

log = logging.getLogger(__name__)


def datasets_to_fold(dag_params: dict) -> list[str]:
    """Every dataset with a champion, or those of the run's `datasets` param that have one."""
    with postgres_connect(Settings.from_env().db_schema) as conn:
        champions = registry.champion_datasets(conn)
    chosen = dag_params.get("datasets") or []
    return [d for d in champions if not chosen or d in chosen]


def catalog(settings: Settings, dataset: str, snapshot_id: str) -> pa.Table:
    s3 = lake_s3_options(settings.lake_uri)
    manifest = SnapshotStore(settings.lake_uri, s3).manifest(dataset, snapshot_id)
    if manifest is None:
        raise FileNotFoundError(f"snapshot {dataset}/{snapshot_id} has no manifest in {settings.lake_uri}")
    fs, path = resolve(manifest["movies_uri"], s3)
    return pq.read_table(path, filesystem=fs, columns=["movie_id", "title", "genres"])


def prepare_events(settings: Settings, dataset: str, snapshot_id: str) -> None:
    """The namespace's events tables, with the published snapshot's catalog and the dataset's
    rating scale; the writer role may insert events from then on."""
    with postgres_connect(schema=Namespace(dataset, settings.db_schema).pg_schema) as conn:
        events.prepare(conn, catalog(settings, dataset, snapshot_id), dataset_spec(dataset).rating_values,
                       settings.db_writer_role, settings.db_reader_role)


def computer(settings: Settings, dataset: str):
    """compute for foldin.run: in the task for up to MLRECS_FOLD_IN_SPARK_USERS users, else a
    spark-submit of spark_jobs/fold_in.py; the same FoldInModel either way."""
    s3 = lake_s3_options(settings.lake_uri)

    def version(model_version: str) -> tuple[dict, pa.Table, list[int], dict | None, int]:
        with postgres_connect(settings.db_schema) as conn:
            row = registry.get(conn, model_version)
        if row is None:
            raise LookupError(f"served version {model_version} is not in the model registry")
        movies = catalog(settings, dataset, row["snapshot_id"])
        try:
            rules = Rules.load(settings.rules_dir, dataset)
            excluded = rules.excluded_ids(movies)
        except PipelineInputError as exc:
            raise fail_without_retry(exc) from exc
        promotion = rules.promotion.as_dict() if rules.promotion.movies else None
        top_n = recs_output.read_marker(ModelLayout(row["model_uri"]).recommendations, s3)["top_n"]
        return row, movies, excluded, promotion, top_n

    def load(model_version: str) -> tuple[FoldInModel, str, int]:
        row, movies, excluded, promotion, top_n = version(model_version)
        model = FoldInModel.load(row["model_uri"], model_version, row["params"], movies,
                                 dataset_spec(dataset).rating_values, excluded, promotion, s3)
        return model, row["model_uri"], top_n

    in_task = on_driver(load)

    def compute(model_version: str, users: list[int], new: pa.Table) -> pa.Table:
        if len(users) <= settings.fold_in_spark_users:
            return in_task(model_version, users, new)
        row, _, excluded, promotion, top_n = version(model_version)
        manifest = SnapshotStore(settings.lake_uri, s3).manifest(dataset, row["snapshot_id"])
        work = join(settings.lake_uri, "fold_in", dataset, f"{model_version}-{uuid.uuid4().hex[:8]}")
        fs, path = resolve(join(work, "events"), s3)
        fs.create_dir(path, recursive=True)
        pq.write_table(new.select(["user_id", "movie_id", "rating"]), f"{path}/part-0.parquet", filesystem=fs)
        job = FoldInJob(row["model_uri"], model_version, row["params"], manifest["movies_uri"],
                        dataset_spec(dataset).rating_values, spark_uri(join(work, "events")),
                        spark_uri(join(work, "output")), top_n, tuple(excluded), promotion)
        log.info("%d users to fold in: on Spark (more than MLRECS_FOLD_IN_SPARK_USERS=%d)", len(users),
                 settings.fold_in_spark_users)
        try:
            submit(settings, job.JOB, job.to_argv())
            fs, path = resolve(join(work, "output"), s3)
            return ds.dataset(path, filesystem=fs, format="parquet", exclude_invalid_files=True).to_table()
        finally:
            fs.delete_dir(resolve(work, s3)[1])

    return compute


def submit(settings: Settings, job: str, argv: list[str]) -> None:
    """spark-submit through the provider's hook and the spark_default connection, as the DAG's
    operators do."""
    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

    SparkSubmitHook(conf=spark_conf(settings), conn_id="spark_default", name=f"movielens-{job}",
                    py_files=str(build_py_files(settings.state_dir / "build")),
                    driver_memory=settings.spark_driver_memory, executor_memory=settings.spark_executor_memory,
                    application_args=argv).submit(str(job_path(settings, job)))


def fold_in(dataset: str) -> dict:
    """One dataset's fold-in. A namespace published before rating events existed gets its events
    tables from the served version's snapshot, and the apps' roles their grants (idempotent), so
    an upgrade needs no step by hand."""
    settings = Settings.from_env()
    with postgres_connect(schema=Namespace(dataset, settings.db_schema).pg_schema) as conn:
        pg_publish.ensure_schema(conn)
        served = pg_publish.current_version(conn)
        if served is not None and not has_events_table(conn):
            with postgres_connect(settings.db_schema) as registry_conn:
                row = registry.get(registry_conn, served)
            if row is not None:
                prepare_events(settings, dataset, row["snapshot_id"])
        pg_publish.grant_readers(conn, settings.db_reader_role)
        result = fold_in_namespace(conn, computer(settings, dataset))
    log.info("%s: %s", dataset, result.as_dict())
    return {"dataset": dataset, **result.as_dict()}
