"""The expectation suites, as reviewed JSON files, and which data frame each one checks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

# the frame a suite validates -> its file (see frames.build_frames)
SUITE_FILES = {
    "ratings": "ratings.json",
    "movies": "movies.json",
    "rated_movies_in_catalog": "rated_movies_in_catalog.json",
}

# the recommend job's output (see recommendations_check.build_recommendation_frames)
RECOMMENDATION_SUITE_FILES = {
    "recommendations": "recommendations.json",
    "recommendation_users": "recommendation_users.json",
    "cold_start": "cold_start.json",
}


def load_suites(expectations_dir: Path, files: dict[str, str] = SUITE_FILES) -> dict[str, dict]:
    suites = {}
    for frame, filename in files.items():
        path = Path(expectations_dir) / filename
        try:
            suites[frame] = json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"expectation suite {path} is missing") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"expectation suite {path} is not valid JSON: {exc}") from exc
    return suites


def suites_fingerprint(expectations_dir: Path) -> str:
    """Changes whenever a suite file changes, so that a snapshot validated under older suites
    is validated again instead of being reused."""
    digest = hashlib.sha256()
    for filename in sorted(SUITE_FILES.values()):
        digest.update(filename.encode())
        digest.update((Path(expectations_dir) / filename).read_bytes())
    return digest.hexdigest()[:16]
