"""Archive -> snapshot: the download and snapshot stages, free of Airflow so they can be tested
and run on their own.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from movielens_recs import __version__
from movielens_recs.config import Settings
from movielens_recs.datasets.catalog import check_dataset_name
from movielens_recs.datasets.download import ArchiveDownloader, archive_url
from movielens_recs.datasets.extract import safe_extract
from movielens_recs.datasets.readers import iter_ratings, locate, read_movies
from movielens_recs.lake.snapshot import SnapshotStore
from movielens_recs.validation.suites import suites_fingerprint

log = logging.getLogger(__name__)

# Bump when the parsed output of an unchanged archive would change, so snapshots are rebuilt.
PARSER_VERSION = "1"


def downloader_for(settings: Settings) -> ArchiveDownloader:
    return ArchiveDownloader(
        settings.base_url,
        settings.download_dir,
        connect_timeout=settings.http_connect_timeout,
        read_timeout=settings.http_read_timeout,
        retries=settings.http_retries,
        deadline=settings.http_deadline,
        min_bytes_per_second=settings.http_min_bytes_per_second,
    )


def download(settings: Settings, store: SnapshotStore, dataset: str) -> dict:
    """Fetch and verify the archive, unless a complete snapshot of the same MD5 exists."""
    check_dataset_name(dataset)
    downloader = downloader_for(settings)
    md5 = downloader.published_md5(dataset)
    if store.is_complete(dataset, md5):
        log.info("snapshot %s/%s is complete: the archive is not fetched again", dataset, md5)
        return {"dataset": dataset, "md5": md5, "archive_path": None, "reused_snapshot": True}
    archive = downloader.fetch(dataset, md5)
    return {
        "dataset": dataset,
        "md5": md5,
        "archive_path": str(archive.path),
        "size": archive.size,
        "url": archive.url,
        "reused_archive": archive.reused,
        "reused_snapshot": False,
    }


def snapshot(settings: Settings, store: SnapshotStore, dataset: str, md5: str) -> dict:
    """Parse the verified archive into a snapshot, or reuse the one already written for it.

    Returns the manifest plus `needs_validation`, which is False only when the snapshot was
    validated under the suites as they are now.
    """
    check_dataset_name(dataset)
    manifest = store.manifest(dataset, md5)
    reused = bool(manifest and manifest["source"].get("parser_version") == PARSER_VERSION)
    if reused:
        log.info("reusing snapshot %s/%s (%s)", dataset, md5, manifest["data_dir"])
    else:
        # The archive may sit on another worker's disk: fetching again is a no-op when cached.
        archive = downloader_for(settings).fetch(dataset, md5)
        workdir = Path(tempfile.mkdtemp(prefix=f"{dataset}-", dir=_work_root(settings)))
        try:
            root = safe_extract(
                archive.path,
                workdir / "unpacked",
                max_total_bytes=settings.max_uncompressed_bytes,
                max_ratio=settings.max_compression_ratio,
                label=f"{dataset}.zip",
            )
            files = locate(root)
            log.info("reading %s layout: %s, %s", files.layout, files.ratings.name, files.movies.name)
            manifest = store.write(
                dataset,
                md5,
                iter_ratings(files),
                read_movies(files),
                source={
                    "archive_md5": md5,
                    "archive_url": archive_url(settings.base_url, dataset),
                    "archive_bytes": archive.size,
                    "layout": files.layout,
                    "parser_version": PARSER_VERSION,
                    "code_version": __version__,
                },
            )
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    validated = store.validation(dataset, md5)
    fingerprint = suites_fingerprint(settings.expectations_dir)
    needs_validation = not (
        store.is_complete(dataset, md5) and validated.get("suites_fingerprint") == fingerprint
    )
    return {**manifest, "reused": reused, "needs_validation": needs_validation, "suites_fingerprint": fingerprint}


def _work_root(settings: Settings) -> Path:
    root = settings.state_dir / "work"
    root.mkdir(parents=True, exist_ok=True)
    return root
