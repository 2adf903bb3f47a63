"""Airflow's services (`make airflow`) and its metadata database's migrations."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

from mlrecs_devkit.stack.core import HOST, StackBase, StackError, _http_ok, _stop

AIRFLOW_ADMIN = "admin"
# `make airflow`: the services of a real deployment. Log serving is left out (--skip-serve-logs):
# it would listen on every interface, and the API server reads the log files directly here.
# The first word of each command is also how its process is recognised; the API server retitles
# itself "airflow api_server ..." once it runs.
AIRFLOW_SERVICES = {
    "airflow-api-server": ["api-server"],
    "airflow-scheduler": ["scheduler", "--skip-serve-logs"],
    "airflow-dag-processor": ["dag-processor"],
    "airflow-triggerer": ["triggerer", "--skip-serve-logs"],
}


class Airflow(StackBase):
    def airflow_secret(self) -> str:
        """One signing secret for every Airflow process (API tokens of tasks, UI sessions);
        added on first use to stacks created before the services existed."""
        return self._ensure("airflow_secret", lambda: secrets.token_hex(24))

    def airflow_url(self) -> str:
        return f"http://{HOST}:{self.config()['airflow_api_port']}"

    def migrate_airflow(self) -> None:
        env = {**os.environ, **self.environment()}
        Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
        airflow = str(Path(sys.executable).parent / "airflow")
        result = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True)
        self._log_file("airflow-migrate").parent.mkdir(parents=True, exist_ok=True)
        self._log_file("airflow-migrate").write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            raise StackError(f"airflow db migrate failed; see {self._log_file('airflow-migrate')}:\n{result.stderr[-2000:]}")

    def airflow_password(self) -> str:
        return self.config()["airflow_admin_password"]

    def start_airflow(self, extra_env: dict | None = None) -> None:
        """api-server, scheduler, dag-processor and triggerer on 127.0.0.1, against the stack.
        `extra_env` overrides settings for these processes (the tests give them their own lake
        and registry schema)."""
        env = {**self.environment(), **(extra_env or {})}
        passwords = Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
        passwords.parent.mkdir(parents=True, exist_ok=True)
        passwords.write_text(json.dumps({AIRFLOW_ADMIN: self.airflow_password()}))
        passwords.chmod(0o600)
        airflow = str(Path(sys.executable).parent / "airflow")
        for name, args in AIRFLOW_SERVICES.items():
            if not self.running_pid(name, _marker(args)):
                self._spawn(name, [airflow, *args], env=env)
        self._wait("Airflow API server", self._airflow_healthy, "airflow-api-server", timeout=120)

    def _airflow_healthy(self) -> bool:
        return _http_ok(f"{self.airflow_url()}/api/v2/monitor/health")

    def stop_airflow(self) -> list[str]:
        """Each service with its whole process group (API workers, executor workers, tasks)."""
        stopped = []
        for name, args in AIRFLOW_SERVICES.items():
            pid = self.running_pid(name, _marker(args))
            if pid is not None:
                _stop(pid, signal.SIGTERM, whole_group=True)
                stopped.append(name)
            self._pid_file(name).unlink(missing_ok=True)
        return stopped

    def airflow_status(self) -> dict[str, int | None]:
        return {name: self.running_pid(name, _marker(args)) for name, args in AIRFLOW_SERVICES.items()}


def _marker(args: list[str]) -> str:
    return args[0].replace("-", "_") if args[0] == "api-server" else args[0]
