"""Ship the project's own code to Spark with --py-files.

The zip is built from the package as it is when the task runs, and named by its content hash,
so that every job runs the code of its own DAG run and unchanged code is zipped only once.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import movielens_recs

PACKAGE_DIR = Path(movielens_recs.__file__).resolve().parent
# The Airflow glue is not needed on the cluster, and importing it there would fail.
_EXCLUDED_DIRS = {"__pycache__", "orchestration"}


def _package_files() -> list[Path]:
    files = []
    for dirpath, dirnames, filenames in os.walk(PACKAGE_DIR):
        dirnames[:] = sorted(d for d in dirnames if d not in _EXCLUDED_DIRS)
        files += [Path(dirpath) / f for f in sorted(filenames) if f.endswith(".py")]
    return files


def build_py_files(build_dir: Path) -> Path:
    files = _package_files()
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(PACKAGE_DIR)).encode())
        digest.update(path.read_bytes())
    target = Path(build_dir) / f"movielens_recs-{digest.hexdigest()[:12]}.zip"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in files:
            zf.write(path, Path("movielens_recs") / path.relative_to(PACKAGE_DIR))
    os.replace(tmp, target)
    return target
