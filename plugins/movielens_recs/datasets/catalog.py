"""What the pipeline knows about each MovieLens release.

The rating scale and a plausible size are per release, and the validation suites take them as
parameters. A name not listed here (a generated or private set in a MovieLens layout) gets the
newer releases' half-star scale and wide size bounds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from movielens_recs.errors import InvalidDatasetName

HALF_STARS = tuple(x / 2 for x in range(1, 11))  # 0.5 .. 5.0
WHOLE_STARS = (1.0, 2.0, 3.0, 4.0, 5.0)

# MovieLens started collecting ratings in 1995; nothing rated earlier is real.
EARLIEST_RATING = datetime(1995, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    rating_values: tuple[float, ...]
    min_rows: int
    max_rows: int
    known: bool = True

    def expectation_parameters(self, now: datetime | None = None) -> dict:
        """Values for the `$PARAMETER`s in `expectations/*.json`."""
        now = now or datetime.now(timezone.utc)
        return {
            "rating_values": list(self.rating_values),
            "min_rows": self.min_rows,
            "max_rows": self.max_rows,
            "rated_at_min": EARLIEST_RATING.replace(tzinfo=None).isoformat(sep=" "),
            "rated_at_max": now.astimezone(timezone.utc).replace(tzinfo=None).isoformat(sep=" "),
        }


# Row bounds bracket the published counts so that a release that lost or doubled its
# rows fails validation, while the "latest" sets, which grow between releases, still pass.
_SPECS = {
    "ml-latest-small": DatasetSpec("ml-latest-small", HALF_STARS, 50_000, 200_000),
    "ml-latest": DatasetSpec("ml-latest", HALF_STARS, 20_000_000, 100_000_000),
    "ml-100k": DatasetSpec("ml-100k", WHOLE_STARS, 100_000, 100_000),
    "ml-1m": DatasetSpec("ml-1m", WHOLE_STARS, 1_000_209, 1_000_209),
    "ml-10m": DatasetSpec("ml-10m", HALF_STARS, 10_000_054, 10_000_054),
    "ml-20m": DatasetSpec("ml-20m", HALF_STARS, 20_000_263, 20_000_263),
    "ml-25m": DatasetSpec("ml-25m", HALF_STARS, 25_000_095, 25_000_095),
    "ml-32m": DatasetSpec("ml-32m", HALF_STARS, 32_000_204, 32_000_204),
}


# A dataset's name becomes a folder of the lake and of the downloads, a URL path, a schema and an
# S3 prefix: one path component, so no '/', and no leading '.' (which rules out '.' and '..').
DATASET_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


def check_dataset_name(name) -> str:
    """The one check of a dataset's name, for every entry point (the DAG's param uses the same
    pattern; the ingest functions, the sinks' namespaces and the API call this)."""
    if not isinstance(name, str) or not re.fullmatch(DATASET_NAME_PATTERN, name):
        raise InvalidDatasetName(f"invalid dataset name {name!r}: use letters, digits, '.', '_' and '-', "
                                 "starting with a letter or digit, at most 100 characters")
    return name


def dataset_spec(name: str) -> DatasetSpec:
    if name in _SPECS:
        return _SPECS[name]
    return DatasetSpec(name, HALF_STARS, 1, 10_000_000_000, known=False)


def known_datasets() -> list[str]:
    return sorted(_SPECS)
