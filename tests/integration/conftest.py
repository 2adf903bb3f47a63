"""Fixtures of the integration tier."""

import uuid

import psycopg
import pytest

from movielens_recs import registry


@pytest.fixture
def conn(stack):
    """A connection to the stack's PostgreSQL whose search path is a schema of this test's own,
    with the registry's tables in it, dropped at the end."""
    schema = f"test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(stack.postgres_dsn(), autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {schema}")
        c.execute(f"SET search_path TO {schema}")
        registry.ensure_schema(c)
        yield c
        c.execute(f"DROP SCHEMA {schema} CASCADE")
