"""The apps' PostgreSQL role (`mlrecs_reader`, made by the stack) reads the reader views of every
namespace and can change nothing, create nothing, and see neither the versions' tables nor the
model registry."""

import re
import uuid

import psycopg
import pytest

from movielens_recs import registry
from mlrecs_devkit.stack import AIRFLOW_DATABASE, PG_READER
from movielens_recs.publish import postgres as pg
from movielens_recs.publish import sinks
from movielens_recs.publish.sinks import Namespace
from tests.publish_fixtures import NOW, cold, recs


@pytest.fixture
def published(stack):
    base = f"rr_{uuid.uuid4().hex[:8]}"
    namespace = Namespace("ml-x", base)
    with psycopg.connect(stack.postgres_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{base}"')
        conn.execute(f'SET search_path TO "{base}"')
        registry.ensure_schema(conn)
        conn.execute(f'CREATE SCHEMA "{namespace.pg_schema}"')
        conn.execute(f'SET search_path TO "{namespace.pg_schema}"')
        sinks.publish([sinks.PostgresSink(conn, namespace.pg_schema, reader_role=PG_READER)], "m-1", recs(5, 1), cold(1), NOW)
        yield base, namespace.pg_schema, pg.table_names("m-1")
        conn.execute(f'DROP SCHEMA "{base}", "{namespace.pg_schema}" CASCADE')


def refused(stack, statement: str) -> str:
    with psycopg.connect(stack.postgres_dsn(role=PG_READER), autocommit=True) as reader:
        # a write through the view (a UNION with the fold-ins) is refused before privileges are
        # checked (ObjectNotInPrerequisiteState); the tables behind it are refused by privilege
        with pytest.raises((psycopg.errors.InsufficientPrivilege, psycopg.errors.ObjectNotInPrerequisiteState)) as error:
            reader.execute(statement)
    return str(error.value)


def test_the_reader_role_reads_the_views(stack, published):
    _, schema, _ = published
    with psycopg.connect(stack.postgres_dsn(role=PG_READER), autocommit=True) as reader:
        assert reader.execute(f'SELECT count(*), min(model_version) FROM "{schema}".recommendations').fetchone() == (50, "m-1")
        assert reader.execute(f'SELECT count(*) FROM "{schema}".recommendations_cold_start').fetchone() == (10,)


@pytest.mark.parametrize("statement", [
    'INSERT INTO "{ns}".recommendations (user_id, rank, movie_id, score) VALUES (1, 99, 1, 1)',
    'UPDATE "{ns}".recommendations SET score = 0',
    'DELETE FROM "{ns}".recommendations',
    'TRUNCATE "{ns}"."{table}"',
    'DROP VIEW "{ns}".recommendations',
    'DROP TABLE "{ns}"."{table}"',
    'SELECT * FROM "{ns}"."{table}"',
    'SELECT * FROM "{ns}".published_versions',
    'CREATE TABLE "{ns}".mine (x int)',
    'CREATE TABLE "{base}".mine (x int)',
    "CREATE TABLE public.mine (x int)",
    'SELECT * FROM "{base}".model_registry',
    'SELECT * FROM "{ns}".fold_in_recs',
    'DELETE FROM "{ns}".fold_in_users',
])
def test_the_reader_role_changes_and_sees_nothing_else(stack, published, statement):
    base, schema, (table, _) = published
    message = refused(stack, statement.format(ns=schema, base=base, table=table))
    assert "permission denied" in message or "must be owner" in message or \
        re.search(r"cannot (insert into|update|delete from) view", message), message


def test_the_reader_role_cannot_reach_airflows_database(stack):
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(stack.postgres_dsn(AIRFLOW_DATABASE, role=PG_READER), connect_timeout=5)
