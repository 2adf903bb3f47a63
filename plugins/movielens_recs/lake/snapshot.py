"""Versioned snapshots of a parsed MovieLens archive, keyed by the archive's MD5.

Layout under `<lake>/snapshots/<dataset>/<md5>/`:

    data-<attempt>/ratings/part-*.parquet   written by one attempt, never modified after
    data-<attempt>/movies/part-*.parquet
    _SNAPSHOT.json     written last by the attempt: counts, files, and which data-<attempt>
    _VALIDATED.json    written after Great Expectations passed on that data-<attempt>

Each attempt writes its own folder, so a crashed or concurrent attempt can never leave a mix of
files under a name a reader trusts; readers follow `_SNAPSHOT.json`. A snapshot is complete, and
usable downstream, only when `_VALIDATED.json` names the same data folder as `_SNAPSHOT.json`.
Both markers are single-object writes, atomic on a local disk and on S3 alike.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timezone
from typing import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from movielens_recs.datasets.readers import MOVIES_SCHEMA, RATINGS_SCHEMA
from movielens_recs.lake.filesystem import (
    S3Options, join, read_json_if_present, resolve, spark_uri, write_json,
)

log = logging.getLogger(__name__)

SNAPSHOT_MARKER = "_SNAPSHOT.json"
VALIDATED_MARKER = "_VALIDATED.json"
# Several files let Spark read a large snapshot in parallel; ml-latest-small stays one file.
ROWS_PER_FILE = 4_000_000


class SnapshotStore:
    def __init__(self, lake_uri: str, s3: S3Options | None = None):
        self.lake_uri = lake_uri.rstrip("/")
        self.s3 = s3
        self.fs, self.root = resolve(self.lake_uri, s3)

    # -- addressing ---------------------------------------------------------------------
    def uri(self, dataset: str, snapshot_id: str, *parts: str) -> str:
        return join(self.lake_uri, "snapshots", dataset, snapshot_id, *parts)

    def _path(self, dataset: str, snapshot_id: str, *parts: str) -> str:
        return join(self.root, "snapshots", dataset, snapshot_id, *parts)

    # -- markers ------------------------------------------------------------------------
    def manifest(self, dataset: str, snapshot_id: str) -> dict | None:
        return read_json_if_present(self.uri(dataset, snapshot_id, SNAPSHOT_MARKER), self.s3)

    def validation(self, dataset: str, snapshot_id: str) -> dict | None:
        return read_json_if_present(self.uri(dataset, snapshot_id, VALIDATED_MARKER), self.s3)

    def is_complete(self, dataset: str, snapshot_id: str) -> bool:
        manifest = self.manifest(dataset, snapshot_id)
        validated = self.validation(dataset, snapshot_id)
        return bool(manifest and validated and validated.get("data_dir") == manifest["data_dir"])

    # -- writing ------------------------------------------------------------------------
    def write(
        self,
        dataset: str,
        snapshot_id: str,
        ratings: Iterable[pa.RecordBatch],
        movies: pa.Table,
        source: dict,
    ) -> dict:
        """Write one attempt's data, then `_SNAPSHOT.json` pointing at it; return the manifest."""
        data_dir = f"data-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        base = self._path(dataset, snapshot_id, data_dir)
        try:
            self.fs.create_dir(base, recursive=True)
            rating_files, rating_rows = self._write_ratings(join(base, "ratings"), ratings)
            movie_file = join(base, "movies", "part-00000.parquet")
            self.fs.create_dir(join(base, "movies"), recursive=True)
            pq.write_table(movies.cast(MOVIES_SCHEMA), movie_file, filesystem=self.fs)
            manifest = {
                "dataset": dataset,
                "snapshot_id": snapshot_id,
                "data_dir": data_dir,
                "ratings_uri": self.uri(dataset, snapshot_id, data_dir, "ratings"),
                "movies_uri": self.uri(dataset, snapshot_id, data_dir, "movies"),
                "ratings_spark_uri": spark_uri(self.uri(dataset, snapshot_id, data_dir, "ratings")),
                "movies_spark_uri": spark_uri(self.uri(dataset, snapshot_id, data_dir, "movies")),
                "ratings_files": rating_files,
                "ratings_rows": rating_rows,
                "movies_rows": movies.num_rows,
                "created_at": datetime.now(timezone.utc).isoformat(),
                "source": source,
            }
            write_json(self.uri(dataset, snapshot_id, SNAPSHOT_MARKER), manifest, self.s3)
        except BaseException:
            self._delete_quietly(base)
            raise
        log.info(
            "snapshot %s/%s written: %d ratings, %d movies in %s",
            dataset, snapshot_id, rating_rows, movies.num_rows, data_dir,
        )
        return manifest

    def _write_ratings(self, folder: str, batches: Iterable[pa.RecordBatch]) -> tuple[list[str], int]:
        self.fs.create_dir(folder, recursive=True)
        files: list[str] = []
        total = 0
        writer = None
        in_file = 0
        try:
            for batch in batches:
                offset = 0
                while offset < batch.num_rows:
                    if writer is None:
                        name = f"part-{len(files):05d}.parquet"
                        files.append(name)
                        writer = pq.ParquetWriter(join(folder, name), RATINGS_SCHEMA, filesystem=self.fs)
                        in_file = 0
                    take = min(batch.num_rows - offset, ROWS_PER_FILE - in_file)
                    writer.write_batch(batch.slice(offset, take), row_group_size=1_000_000)
                    offset += take
                    in_file += take
                    total += take
                    if in_file >= ROWS_PER_FILE:
                        writer.close()
                        writer = None
            if writer is None and not files:  # no rows at all: still a readable, empty table
                files.append("part-00000.parquet")
                pq.write_table(RATINGS_SCHEMA.empty_table(), join(folder, files[0]), filesystem=self.fs)
        finally:
            if writer is not None:
                writer.close()
        return files, total

    def mark_validated(self, dataset: str, snapshot_id: str, report: dict) -> dict:
        manifest = self.manifest(dataset, snapshot_id)
        if manifest is None:
            raise FileNotFoundError(f"no snapshot {dataset}/{snapshot_id} to mark validated")
        if report.get("data_dir") != manifest["data_dir"]:
            raise RuntimeError(
                f"validation report is for {report.get('data_dir')}, but snapshot "
                f"{dataset}/{snapshot_id} now points at {manifest['data_dir']}; validate again"
            )
        if not report.get("success"):
            raise RuntimeError("refusing to mark a snapshot validated with a failed report")
        marker = {**report, "marked_at": datetime.now(timezone.utc).isoformat()}
        write_json(self.uri(dataset, snapshot_id, VALIDATED_MARKER), marker, self.s3)
        return marker

    def _delete_quietly(self, path: str) -> None:
        try:
            self.fs.delete_dir(path)
        except (FileNotFoundError, OSError):
            log.warning("could not remove partial snapshot data at %s", path)
