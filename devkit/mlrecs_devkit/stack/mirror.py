"""The MovieLens mirror: the real archives (../shared/data) and generated ones, served on
127.0.0.1 in place of GroupLens."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mlrecs_devkit.stack.core import HOST, StackBase, _port_open

MIRROR_MODULE = "mlrecs_devkit.mirror"


class Mirror(StackBase):
    def mirror_url(self) -> str:
        return f"http://{HOST}:{self.config()['mirror_port']}"

    def mirror_dir(self) -> Path | None:
        """The real MovieLens archives served in place of GroupLens (the shared data folder)."""
        configured = os.environ.get("MLRECS_MIRROR_DIR")
        path = Path(configured) if configured else self.settings.project_root.parent / "shared" / "data"
        return path if path.is_dir() else None

    def generated_dir(self) -> Path:
        return self.settings.generated_dir

    def mirror_dirs(self) -> list[Path]:
        return [d for d in (self.mirror_dir(), self.generated_dir()) if d is not None]

    def start_mirror(self) -> None:
        port = self.config()["mirror_port"]
        if self.running_pid("mirror", MIRROR_MODULE):
            return
        self.generated_dir().mkdir(parents=True, exist_ok=True)
        self._spawn("mirror", [sys.executable, "-m", MIRROR_MODULE, "--bind", HOST, "--port", str(port),
                               *map(str, self.mirror_dirs())])
        self._wait("MovieLens mirror", lambda: _port_open(port), "mirror")
