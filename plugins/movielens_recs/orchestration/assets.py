"""Airflow Assets for consumers of the published recommendations.

The publish task declares one AssetAlias and, for every sink it published to, adds an event on
the asset of that dataset's namespace in that sink, named `mlrecs/<dataset>/<sink>` and carrying
the model version and row count as extra. A consumer DAG schedules on the name:

    schedule=[Asset.ref(name="mlrecs/ml-latest-small/postgres")]

The alias is what lets one task emit assets whose dataset is known only at run time.
"""

from __future__ import annotations

from airflow.sdk import Asset, AssetAlias, BaseHook

from movielens_recs.config import Settings
from movielens_recs.orchestration.connections import POSTGRES_CONN_ID
from movielens_recs.publish.sinks import Namespace

PUBLISHED = AssetAlias("mlrecs-published-recommendations")


def asset_name(dataset: str, sink: str) -> str:
    return f"mlrecs/{dataset}/{sink}"


def published_asset(settings: Settings, dataset: str, sink: str) -> Asset:
    namespace = Namespace(dataset, settings.db_schema, settings.s3_prefix)
    if sink == "postgres":
        conn = BaseHook.get_connection(POSTGRES_CONN_ID)
        uri = f"postgres://{conn.host}:{conn.port or 5432}/{conn.schema or 'postgres'}/{namespace.pg_schema}/recommendations"
    else:
        uri = f"s3://{settings.s3_bucket}/{namespace.s3_prefix}/recommendations/_manifest.json"
    return Asset(name=asset_name(dataset, sink), uri=uri)


def emit(outlet_events, settings: Settings, dataset: str, published: list[dict]) -> None:
    """One event per sink that serves the version now."""
    for result in published:
        outlet_events[PUBLISHED].add(published_asset(settings, dataset, result["sink"]),
                                     extra={"dataset": dataset, "model_version": result["model_version"],
                                            "rows": result["rows"]})
