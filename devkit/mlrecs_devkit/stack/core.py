"""What every service of the local stack shares: its state folder, the ports and secrets
chosen once in stack.json, and the bookkeeping of the processes it starts (pid and log files)."""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from movielens_recs.config import Settings

HOST = "127.0.0.1"


class StackError(RuntimeError):
    pass


# Linux's default, where /proc does not say
EPHEMERAL_PORTS = (32768, 60999)
# the stack's ports are chosen from here up to the ephemeral range
PORTS_FROM = 10_000
_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        return low, high
    except (OSError, ValueError):
        return EPHEMERAL_PORTS


def _free_port() -> int:
    """A port that is free now, below the kernel's ephemeral range. The stack keeps its ports in
    stack.json and binds them again at every start; while a service is stopped, a port from the
    ephemeral range can be handed to anything else, such as another server's port 0 or a client's
    local end. On 2026-12-07 the API's port was taken that way for about the last 20 minutes of a test
    run, and every start of the API failed with "address already in use"."""
    candidates = [port for port in range(PORTS_FROM, _ephemeral_range()[0]) if port not in _handed_out]
    random.shuffle(candidates)
    for port in candidates:
        with socket.socket() as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
        _handed_out.add(port)  # two services chosen together never get the same port
        return port
    with socket.socket() as sock:  # an unusual range leaves nothing below it: let the kernel choose
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _stop(pid: int, first: signal.Signals, whole_group: bool = False, timeout: float = 30) -> None:
    """Ask politely (`first`, to the process or its whole group), wait, then SIGKILL whatever is
    left: the group when `pid` leads one (or `whole_group`), else the process."""
    try:
        os.killpg(pid, first) if whole_group else os.kill(pid, first)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists() and not _is_zombie(pid):
        time.sleep(0.2)
    if whole_group:
        try:
            os.killpg(pid, signal.SIGKILL)  # children the leader left behind
        except ProcessLookupError:
            pass
    elif Path(f"/proc/{pid}").exists() and not _is_zombie(pid):
        os.killpg(pid, signal.SIGKILL) if _is_group_leader(pid) else os.kill(pid, signal.SIGKILL)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (FileNotFoundError, IndexError):
        return True


def _is_group_leader(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


@dataclass
class StackBase:
    """The state a service module works on; `Stack` combines the services."""

    settings: Settings

    @property
    def state(self) -> Path:
        return self.settings.state_dir

    @property
    def config_file(self) -> Path:
        return self.state / "stack.json"

    def config(self) -> dict:
        """Ports and secrets: chosen on the first call, then read back so they never change."""
        if self.config_file.exists():
            return json.loads(self.config_file.read_text())
        cfg = {
            "spark_master_port": _free_port(),
            "spark_master_ui_port": _free_port(),
            "spark_worker_ui_port": _free_port(),
            "postgres_port": _free_port(),
            "postgres_password": secrets.token_hex(12),
            "postgres_superuser_password": secrets.token_hex(12),
            "s3_port": _free_port(),
            "mirror_port": _free_port(),
            "airflow_api_port": _free_port(),
            "airflow_admin_password": secrets.token_hex(8),
            "spark_worker_cores": int(os.environ.get("MLRECS_SPARK_WORKER_CORES") or os.cpu_count() or 2),
            "spark_worker_memory": os.environ.get("MLRECS_SPARK_WORKER_MEMORY") or "8g",
        }
        self._save_config(cfg)
        return cfg

    def _save_config(self, cfg: dict) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(json.dumps(cfg, indent=2))
        self.config_file.chmod(0o600)

    def _ensure(self, key: str, make: Callable[[], object]):
        """A config value added on first use, so stacks created before it existed gain it."""
        cfg = self.config()
        if key not in cfg:
            cfg[key] = make()
            self._save_config(cfg)
        return cfg[key]

    def environment(self) -> dict[str, str]:
        raise NotImplementedError  # Stack's: it needs every service

    # -- process bookkeeping ---------------------------------------------------------------
    def _pid_file(self, name: str) -> Path:
        return self.state / "run" / f"{name}.pid"

    def _log_file(self, name: str) -> Path:
        return self.state / "logs" / f"{name}.log"

    def running_pid(self, name: str, marker: str) -> int | None:
        """The recorded pid of `name`, if that process is alive and is still ours."""
        pid_file = self._pid_file(name)
        if not pid_file.exists():
            return None
        try:
            pid = int(pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (ValueError, FileNotFoundError, ProcessLookupError):
            return None
        return pid if marker in cmdline else None

    def _spawn(self, name: str, argv: list[str], env: dict | None = None, user: str | None = None) -> int:
        self._log_file(name).parent.mkdir(parents=True, exist_ok=True)
        self._pid_file(name).parent.mkdir(parents=True, exist_ok=True)
        log = open(self._log_file(name), "ab")
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # survives the shell that ran `make up`
            user=user,
            cwd=self.state,
        )
        self._pid_file(name).write_text(str(proc.pid))
        return proc.pid

    def _wait(self, what: str, ready: Callable[[], bool], name: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            time.sleep(0.5)
        tail = ""
        if self._log_file(name).exists():
            tail = "\n".join(self._log_file(name).read_text(errors="replace").splitlines()[-20:])
        raise StackError(f"{what} did not become ready within {timeout:.0f}s; log {self._log_file(name)}:\n{tail}")
