"""Where a model's recommendations live in the lake, and the marker that makes them publishable.

    <model_uri>/recommendations/recommendations/   Parquet: user_id, rank, movie_id, title, score, predicted_rating
    <model_uri>/recommendations/cold_start/        Parquet: rank, movie_id, title, score
    <model_uri>/recommendations/_validation.json   the GX report, pass or fail
    <model_uri>/recommendations/_RECOMMENDATIONS.json
        written last, and only when the output passed its suites; the publish tasks refuse
        an output without it, so a half-written or failing set is never published.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from movielens_recs.lake.filesystem import S3Options, join, read_json, resolve
from movielens_recs.models.store import ModelLayout

MARKER = "_RECOMMENDATIONS.json"
RECOMMENDATIONS = "recommendations"
COLD_START = "cold_start"
REPORT = "_validation.json"


class RecommendationsNotReady(RuntimeError):
    pass


def output_uri(model_uri: str) -> str:
    return ModelLayout(model_uri).recommendations


def remove_marker(output: str, s3: S3Options | None = None) -> None:
    fs, path = resolve(join(output, MARKER), s3)
    if fs.get_file_info(path).type.name != "NotFound":
        fs.delete_file(path)


def read_marker(output: str, s3: S3Options | None = None) -> dict:
    try:
        return read_json(join(output, MARKER), s3)
    except FileNotFoundError:
        raise RecommendationsNotReady(
            f"{output} has no {MARKER}: the recommend job did not finish or its output failed validation "
            f"(see {join(output, REPORT)})"
        ) from None


def _read_folder(uri: str, s3: S3Options | None) -> pa.Table:
    fs, path = resolve(uri, s3)
    return ds.dataset(path, filesystem=fs, format="parquet", exclude_invalid_files=True).to_table()


def load(output: str, s3: S3Options | None = None) -> tuple[dict, pa.Table, pa.Table]:
    """The marker and both tables, sorted as readers expect them (user, rank)."""
    marker = read_marker(output, s3)
    recs = _read_folder(join(output, RECOMMENDATIONS), s3)
    cold = _read_folder(join(output, COLD_START), s3)
    if recs.num_rows != marker["rows"] or cold.num_rows != marker["cold_rows"]:
        raise RecommendationsNotReady(
            f"{output} holds {recs.num_rows} recommendations and {cold.num_rows} cold-start rows, "
            f"its marker says {marker['rows']} and {marker['cold_rows']}: it changed after validation"
        )
    recs = recs.take(pc.sort_indices(recs, [("user_id", "ascending"), ("rank", "ascending")]))
    cold = cold.take(pc.sort_indices(cold, [("rank", "ascending")]))
    return marker, recs, cold
