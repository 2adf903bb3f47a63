"""The pipeline's PostgreSQL connection goes through the provider's PostgresHook, so the Airflow
connection's extras reach libpq: checked on the stack's real server."""

import json
from urllib.parse import urlsplit

import psycopg
import pytest

from movielens_recs.orchestration.connections import postgres_connect


def connection_with(stack_env, extra: dict) -> str:
    url = urlsplit(stack_env["AIRFLOW_CONN_POSTGRES_DEFAULT"])
    return json.dumps({"conn_type": "postgres", "host": url.hostname, "port": url.port, "login": url.username,
                       "password": url.password, "schema": url.path.lstrip("/"), "extra": extra})


def test_the_connections_extras_reach_the_server(stack_env, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_POSTGRES_DEFAULT", connection_with(
        stack_env, {"application_name": "from-the-extra", "options": "-c statement_timeout=4321"}))
    with postgres_connect(schema="mlrecs") as conn:
        assert conn.execute("SHOW application_name").fetchone() == ("from-the-extra",)
        assert conn.execute("SHOW statement_timeout").fetchone() == ("4321ms",)
        assert conn.autocommit and conn.execute("SHOW search_path").fetchone() == ("mlrecs",)


def test_sslmode_from_the_extras_is_honoured(stack_env, monkeypatch):
    """The local server has no TLS: a connection that requires it is refused, which shows the
    setting reached libpq (the direct connect used before ignored every extra)."""
    monkeypatch.setenv("AIRFLOW_CONN_POSTGRES_DEFAULT", connection_with(stack_env, {"sslmode": "require"}))
    with pytest.raises(psycopg.OperationalError, match="SSL"):
        postgres_connect(schema="mlrecs")
