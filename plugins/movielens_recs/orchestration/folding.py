"""Task bodies of the fold-in DAG, and the events tables' set-up at publish time: Airflow's
connections and settings turned into the plain arguments of foldin/."""

from __future__ import annotations

import logging

import pyarrow as pa
import pyarrow.parquet as pq

from movielens_recs import registry
from movielens_recs.config import Settings
from movielens_recs.datasets.catalog import dataset_spec
from movielens_recs.errors import PipelineInputError
from movielens_recs.foldin import events
from movielens_recs.foldin.fold import FoldInModel
from movielens_recs.foldin.run import fold_in as fold_in_namespace
from movielens_recs.lake.filesystem import resolve
from movielens_recs.lake.snapshot import SnapshotStore
from movielens_recs.models.store import ModelLayout
from movielens_recs.orchestration.connections import lake_s3_options, postgres_connect
from movielens_recs.orchestration.tasks import fail_without_retry
from movielens_recs.publish.sinks import Namespace
from movielens_recs.recommend import output as recs_output
from movielens_recs.recommend.rules import Rules

log = logging.getLogger(__name__)


def datasets_to_fold(dag_params: dict) -> list[str]:
    """Every dataset with a champion, or those of the run's `datasets` param that have one."""
    with postgres_connect() as conn:
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


def model_loader(settings: Settings, dataset: str):
    """load_model for foldin.run: a version's factors, catalog, rules and list length."""
    s3 = lake_s3_options(settings.lake_uri)

    def load(version: str) -> tuple[FoldInModel, str, int]:
        with postgres_connect() as conn:
            row = registry.get(conn, version)
        if row is None:
            raise LookupError(f"served version {version} is not in the model registry")
        movies = catalog(settings, dataset, row["snapshot_id"])
        try:
            rules = Rules.load(settings.rules_dir, dataset)
            excluded = rules.excluded_ids(movies)
        except PipelineInputError as exc:
            raise fail_without_retry(exc) from exc
        promotion = rules.promotion.as_dict() if rules.promotion.movies else None
        top_n = recs_output.read_marker(ModelLayout(row["model_uri"]).recommendations, s3)["top_n"]
        model = FoldInModel.load(row["model_uri"], version, row["params"], movies,
                                 dataset_spec(dataset).rating_values, excluded, promotion, s3)
        return model, row["model_uri"], top_n

    return load


def fold_in(dataset: str) -> dict:
    settings = Settings.from_env()
    with postgres_connect(schema=Namespace(dataset, settings.db_schema).pg_schema) as conn:
        result = fold_in_namespace(conn, model_loader(settings, dataset))
    log.info("%s: %s", dataset, result.as_dict())
    return {"dataset": dataset, **result.as_dict()}
