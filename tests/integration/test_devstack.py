"""The local stack: idempotent, and reachable only from this machine."""

import os
from pathlib import Path

import psycopg

from movielens_recs.devstack import BUCKET, PG_DATABASE


def test_a_second_up_changes_nothing(stack):
    before = stack.status()
    assert all(before.values()), before
    stack.up()
    assert stack.status() == before


LOOPBACK = {
    "0100007F",                          # 127.0.0.1 in /proc/net/tcp
    "0000000000000000FFFF00000100007F",  # ::ffff:127.0.0.1 in /proc/net/tcp6
    "00000000000000000000000001000000",  # ::1
}


def _listening_addresses(pid: int) -> list[str]:
    """Local addresses of the sockets `pid` listens on, read from /proc (no ss or netstat needed)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    addresses = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                addresses.append(fields[1])
    return addresses


def test_every_service_listens_on_loopback_only(stack):
    for name, pid in stack.status().items():
        addresses = _listening_addresses(pid)
        assert addresses, f"{name} listens on nothing"
        for address in addresses:
            assert address.split(":")[0] in LOOPBACK, f"{name} listens on {address}"


def test_services_are_ready_for_the_pipeline(stack):
    with psycopg.connect(stack.postgres_dsn(), connect_timeout=5) as conn:
        assert conn.execute("SELECT current_database(), current_user").fetchone() == (PG_DATABASE, "mlrecs")
    assert BUCKET in {b["Name"] for b in stack.s3_client().list_buckets()["Buckets"]}
    assert stack._master_json()["aliveworkers"] >= 1
