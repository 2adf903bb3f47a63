"""Validate one snapshot attempt and write the report: the body of the validation job.

The frames are built on Spark (the catalog join scales with the cluster); GX then runs on its
pandas engine on the driver when they fit (runner.PANDAS_MAX_ROWS), else on Spark.

Lives in the package (not in spark_jobs/) so that tests can run it on a shared SparkSession.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from movielens_recs.datasets.catalog import dataset_spec
from movielens_recs.lake.filesystem import write_json
from movielens_recs.validation.frames import build_frames
from movielens_recs.validation.runner import PANDAS_MAX_ROWS, ValidationReport, choose_engine, validate_frames
from movielens_recs.validation.suites import load_suites, suites_fingerprint


def validate_snapshot(
    spark,
    *,
    dataset: str,
    snapshot_id: str,
    data_dir: str,
    ratings_uri: str,
    movies_uri: str,
    expectations_dir: Path,
    report_uri: str,
    data_docs_dir: Path | None = None,
    fingerprint: str | None = None,
    pandas_max_rows: int = PANDAS_MAX_ROWS,
) -> tuple[ValidationReport, dict]:
    """Returns the report and the JSON payload written to `report_uri`, pass or fail."""
    ratings = spark.read.parquet(ratings_uri)
    movies = spark.read.parquet(movies_uri)
    # each expectation is a Spark job of its own: scan the Parquet and do the join once
    frames = {name: frame.cache() for name, frame in build_frames(ratings, movies).items()}
    try:
        engine, checked = choose_engine(frames, pandas_max_rows)
        report = validate_frames(
            checked,
            load_suites(Path(expectations_dir)),
            dataset_spec(dataset).expectation_parameters(),
            data_docs_dir=Path(data_docs_dir) if data_docs_dir else None,
            engine=engine,
        )
    finally:
        for frame in frames.values():
            frame.unpersist()
    payload = {
        **report.to_dict(),
        "dataset": dataset,
        "snapshot_id": snapshot_id,
        "data_dir": data_dir,
        "suites_fingerprint": fingerprint or suites_fingerprint(Path(expectations_dir)),
        "validated_at": datetime.now(timezone.utc).isoformat(),
        "engine": engine,
    }
    write_json(report_uri, payload)
    return report, payload
