"""The ports the local stack keeps in stack.json: chosen where no other socket is handed them."""

import socket

import pytest

from mlrecs_devkit.stack import core


@pytest.fixture(autouse=True)
def nothing_handed_out(monkeypatch):
    monkeypatch.setattr(core, "_handed_out", set())


def test_ports_are_distinct_free_and_below_the_ephemeral_range():
    low, _ = core._ephemeral_range()
    ports = [core._free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    assert all(10_000 <= port < low for port in ports)
    with socket.socket() as sock:
        sock.bind((core.HOST, ports[-1]))  # free when handed out


def _three_free_ports() -> int:
    for start in range(20_000, 30_000, 3):
        try:
            for port in range(start, start + 3):
                with socket.socket() as sock:
                    sock.bind((core.HOST, port))
            return start
        except OSError:
            continue
    raise AssertionError("no three free ports in a row")


def test_a_port_in_use_is_passed_over_and_an_empty_range_falls_back_to_the_kernel(monkeypatch):
    start = _three_free_ports()
    monkeypatch.setattr(core, "PORTS_FROM", start)
    monkeypatch.setattr(core, "_ephemeral_range", lambda: (start + 3, 60_999))
    held = []
    try:
        for port in (start, start + 1):
            sock = socket.socket()
            sock.bind((core.HOST, port))
            sock.listen()
            held.append(sock)
        assert core._free_port() == start + 2
        kernel = core._free_port()  # nothing free is left below the range
        assert kernel not in (start, start + 1, start + 2) and kernel > 0
    finally:
        for sock in held:
            sock.close()
