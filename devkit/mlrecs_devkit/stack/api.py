"""The recommendations API (`make serve`): uvicorn on 127.0.0.1, as the apps' read-only role."""

from __future__ import annotations

import signal
import sys

from mlrecs_devkit.stack.core import HOST, StackBase, _free_port, _http_ok, _stop

API_MODULE = "movielens_recs.serving.api"


class Api(StackBase):
    def api_url(self) -> str:
        return f"http://{HOST}:{self._ensure('api_port', _free_port)}"

    def start_api(self, extra_env: dict | None = None, workers: int = 2) -> None:
        """uvicorn on 127.0.0.1, reading as the apps' read-only role; `extra_env` as for Airflow."""
        port = self._ensure("api_port", _free_port)
        if not self.running_pid("api", API_MODULE):
            env = {**self.environment(), **(extra_env or {})}
            self._spawn("api", [sys.executable, "-m", API_MODULE, "--host", HOST, "--port", str(port),
                                "--workers", str(workers)], env=env)
        self._wait("recommendations API", lambda: _http_ok(f"{self.api_url()}/healthz"), "api", timeout=60)

    def stop_api(self) -> bool:
        pid = self.running_pid("api", API_MODULE)
        if pid is not None:
            _stop(pid, signal.SIGTERM, whole_group=True)
        self._pid_file("api").unlink(missing_ok=True)
        return pid is not None
