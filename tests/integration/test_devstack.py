"""The local stack: idempotent, and reachable only from this machine."""

import psycopg

from movielens_recs.devstack import BUCKET, PG_DATABASE
from tests.conftest import LOOPBACK, listening_addresses


def test_a_second_up_changes_nothing(stack):
    before = stack.status()
    assert all(before.values()), before
    stack.up()
    assert stack.status() == before


def test_every_service_listens_on_loopback_only(stack):
    for name, pid in stack.status().items():
        addresses = listening_addresses(pid)
        assert addresses, f"{name} listens on nothing"
        for address in addresses:
            assert address.split(":")[0] in LOOPBACK, f"{name} listens on {address}"


def test_services_are_ready_for_the_pipeline(stack):
    with psycopg.connect(stack.postgres_dsn(), connect_timeout=5) as conn:
        assert conn.execute("SELECT current_database(), current_user").fetchone() == (PG_DATABASE, "mlrecs")
    assert BUCKET in {b["Name"] for b in stack.s3_client().list_buckets()["Buckets"]}
    assert stack._master_json()["aliveworkers"] >= 1
