"""A namespace per dataset in both sinks: publishing or rolling back one dataset never changes
what readers of another see, even when both publish at once."""

import threading
import time
import uuid

import psycopg
import pytest

from mlrecs_devkit.stack import BUCKET, PG_READER
from movielens_recs.publish import s3, sinks
from movielens_recs.publish.sinks import Namespace
from tests.publish_fixtures import NOW, cold, recs, running


@pytest.fixture
def base(stack):
    """A pipeline schema and S3 prefix of this test's own; every namespace under them is dropped."""
    schema, prefix = f"ns_{uuid.uuid4().hex[:8]}", f"tests/ns-{uuid.uuid4().hex[:8]}"
    yield schema, prefix
    for opened in Sinks.opened:
        opened.conn.close()
    Sinks.opened.clear()
    with psycopg.connect(stack.postgres_dsn(), autocommit=True) as conn:
        for (name,) in conn.execute("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)", (schema,)).fetchall():
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


class Sinks:
    """Both sinks of one dataset's namespace, as the publish task opens them."""

    opened: list["Sinks"] = []

    def __init__(self, stack, base, dataset):
        Sinks.opened.append(self)
        self.namespace = Namespace(dataset, *base)
        self.conn = psycopg.connect(stack.postgres_dsn(), autocommit=True)
        self.conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.namespace.pg_schema}"')
        self.conn.execute(f'SET search_path TO "{self.namespace.pg_schema}"')
        self.targets = [sinks.PostgresSink(self.conn, self.namespace.pg_schema, reader_role=PG_READER),
                        sinks.S3Sink(stack.s3_client(), BUCKET, self.namespace.s3_prefix)]

    def publish(self, version, users, seed):
        sinks.publish(self.targets, version, recs(users, seed), cold(seed), NOW)

    def served(self):
        return [sink.served() for sink in self.targets]


def test_two_datasets_published_one_after_the_other_both_stay_served(stack, base):
    a, b = Sinks(stack, base, "ml-a"), Sinks(stack, base, "ml-b")
    a.publish("a-1", 20, 1)
    b.publish("b-1", 30, 2)
    assert (a.served(), b.served()) == (["a-1", "a-1"], ["b-1", "b-1"])
    with psycopg.connect(stack.postgres_dsn(role=PG_READER)) as reader:
        counts = {ns.namespace.dataset: reader.execute(
            f'SELECT count(*), min(model_version) FROM "{ns.namespace.pg_schema}".recommendations').fetchone()
            for ns in (a, b)}
    assert counts == {"ml-a": (200, "a-1"), "ml-b": (300, "b-1")}
    manifests = {ns.namespace.dataset: s3.current_manifest(stack.s3_client("reader"), BUCKET, ns.namespace.s3_prefix)
                 for ns in (a, b)}
    assert {k: (m["model_version"], m["row_count"]) for k, m in manifests.items()} == {
        "ml-a": ("a-1", 200), "ml-b": ("b-1", 300)}


def test_rolling_back_one_dataset_leaves_the_other_alone(stack, base):
    a, b = Sinks(stack, base, "ml-a"), Sinks(stack, base, "ml-b")
    for seed in (1, 2):
        a.publish(f"a-{seed}", 10, seed)
        b.publish(f"b-{seed}", 10, seed)
    assert sinks.rollback(a.targets) == "a-1"
    assert (a.served(), b.served()) == (["a-1", "a-1"], ["b-2", "b-2"])


def test_two_datasets_published_at_once_readers_of_each_see_only_their_own_complete_set(stack, base):
    a, b = Sinks(stack, base, "ml-a"), Sinks(stack, base, "ml-b")
    a.publish("a-0", 2_000, 0)
    b.publish("b-0", 2_000, 0)
    stop, errors, seen = threading.Event(), [], {"ml-a": set(), "ml-b": set()}

    def read(ns, prefix):
        with psycopg.connect(stack.postgres_dsn(role=PG_READER), autocommit=True) as conn:
            s3_reader = stack.s3_client("reader")
            while not stop.is_set():
                try:
                    rows = conn.execute(f'SELECT model_version FROM "{ns.pg_schema}".recommendations '
                                        "WHERE user_id = 1234 ORDER BY rank").fetchall()
                    versions = {r[0] for r in rows}
                    manifest = s3.current_manifest(s3_reader, BUCKET, ns.s3_prefix)
                    if len(rows) != 10 or len(versions) != 1 or not next(iter(versions)).startswith(prefix) \
                            or not manifest["model_version"].startswith(prefix):
                        errors.append((ns.dataset, rows, manifest["model_version"]))
                    seen[ns.dataset] |= versions
                except Exception as exc:  # any error a reader gets is a failure of the publish
                    errors.append(repr(exc))

    with running(stop, lambda: read(a.namespace, "a-"), lambda: read(b.namespace, "b-")):
        writers = [threading.Thread(target=lambda ns=ns, p=p: [ns.publish(f"{p}-{i}", 2_000, i) for i in (1, 2)])
                   for ns, p in ((a, "a"), (b, "b"))]
        for thread in writers:
            thread.start()
        for thread in writers:
            thread.join(timeout=300)
        time.sleep(0.2)
    assert errors == []
    assert (a.served(), b.served()) == (["a-2", "a-2"], ["b-2", "b-2"])
    assert seen["ml-a"] <= {"a-0", "a-1", "a-2"} and seen["ml-b"] <= {"b-0", "b-1", "b-2"}
