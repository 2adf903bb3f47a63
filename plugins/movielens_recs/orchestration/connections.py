"""Read the stack's Airflow connections into the plain objects the core modules take."""

from __future__ import annotations

from airflow.sdk import BaseHook

from movielens_recs.lake.filesystem import S3Options, is_s3

AWS_CONN_ID = "aws_default"


def s3_options(conn_id: str = AWS_CONN_ID) -> S3Options:
    conn = BaseHook.get_connection(conn_id)
    extra = conn.extra_dejson
    return S3Options(
        endpoint_url=extra.get("endpoint_url"),
        access_key=conn.login or None,
        secret_key=conn.password or None,
        region=extra.get("region_name"),
    )


def lake_s3_options(lake_uri: str) -> S3Options | None:
    """S3 credentials for the lake, only looked up when the lake is on S3."""
    return s3_options() if is_s3(lake_uri) else None


POSTGRES_CONN_ID = "postgres_default"


def postgres_connect(schema: str, conn_id: str = POSTGRES_CONN_ID):
    """A psycopg 3 connection from the provider's PostgresHook (autocommit; use transactions),
    working in `schema` (the registry's is Settings.db_schema; a dataset's sinks have their own),
    created if missing.

    Through the hook, the connection's extras reach libpq (`sslmode`, `sslrootcert`, `options`,
    ...), and its IAM and other provider features work. A connect timeout and an application name
    are added unless the connection sets its own."""
    import json

    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from psycopg import sql


    hook = PostgresHook(postgres_conn_id=conn_id)
    connection = hook.connection
    connection.extra = json.dumps({"connect_timeout": 10, "application_name": "movielens_recs",
                                   **connection.extra_dejson})
    db = hook.get_conn()
    db.autocommit = True
    db.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    db.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    return db
