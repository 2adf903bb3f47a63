"""What the spark_jobs/ entry points share: read the cutoff they were given, start a session, write figures."""

from __future__ import annotations

from datetime import datetime, timezone


def parse_cutoff(text: str) -> datetime | None:
    """The model's cutoff as the DAG passes it (an ISO time), in UTC; empty means none."""
    return datetime.fromisoformat(text).astimezone(timezone.utc) if text else None


def start_session(app_name: str, checkpoint_dir: str = ""):
    """The job's SparkSession; a checkpoint directory lets ALS cut long lineages."""
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName(app_name).getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    if checkpoint_dir:
        spark.sparkContext.setCheckpointDir(checkpoint_dir)
    return spark


def write_figures(path: str, figures: dict) -> None:
    """A benchmark job's figures: JSON to the local `path` its caller reads, and to stdout for the log."""
    import json

    with open(path, "w") as fh:
        json.dump(figures, fh, indent=2)
    print(json.dumps(figures), flush=True)
