"""The benchmark (`make bench`): what each part of the pipeline costs, measured side by side."""

from __future__ import annotations

import json


def write_figures(path: str, figures: dict) -> None:
    """A benchmark job's figures: JSON to the local `path` its caller reads, and to stdout for the log."""
    with open(path, "w") as fh:
        json.dump(figures, fh, indent=2)
    print(json.dumps(figures), flush=True)
