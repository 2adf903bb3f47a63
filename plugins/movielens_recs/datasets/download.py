"""Fetch a MovieLens archive and prove it is the one its publisher checksummed.

The published MD5 is fetched first: it names the archive, so a verified copy already on disk
(or a snapshot already built from it) can be reused without fetching the archive again. The
archive streams into a temporary file beside its destination and is renamed into place only
after its size and MD5 check out, so no unverified file is ever left under the final name.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from movielens_recs.datasets.catalog import check_dataset_name
from movielens_recs.datasets.checksum import md5_of_file, parse_md5_file
from movielens_recs.errors import (
    ChecksumMismatchError,
    DownloadError,
    DownloadTooSlowError,
    MissingChecksumError,
    TruncatedDownloadError,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DownloadedArchive:
    dataset: str
    path: Path
    md5: str
    size: int
    url: str
    reused: bool


def archive_url(base_url: str, dataset: str) -> str:
    return f"{base_url.rstrip('/')}/{dataset}.zip"


def _session(retries: int) -> requests.Session:
    """A session that retries connection errors and 5xx/429 with backoff, but not 404."""
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=0.5,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=("GET", "HEAD"),
        raise_on_status=False,
    )
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session


class ArchiveDownloader:
    # the minimum rate is judged only after this long, so a slow start is not cut off
    GRACE_SECONDS = 10.0
    def __init__(
        self,
        base_url: str,
        download_dir: Path,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        retries: int = 3,
        deadline: float = 3600.0,
        min_bytes_per_second: float = 10_000.0,
    ):
        self.base_url = base_url.rstrip("/")
        self.download_dir = Path(download_dir)
        self.timeout = (connect_timeout, read_timeout)
        # read_timeout bounds only the gap between two reads: a server dripping a byte a second
        # never trips it. These bound the whole transfer.
        self.deadline = deadline
        self.min_bytes_per_second = min_bytes_per_second
        self.session = _session(retries)

    def published_md5(self, dataset: str) -> str:
        url = archive_url(self.base_url, check_dataset_name(dataset)) + ".md5"
        try:
            response = self.session.get(url, timeout=self.timeout)
        except requests.RequestException as exc:
            raise DownloadError(f"could not fetch the checksum {url}: {exc}") from exc
        if response.status_code == 404:
            raise MissingChecksumError(
                f"no checksum is published at {url}; refusing to use {dataset}.zip unverified"
            )
        if response.status_code != 200:
            raise DownloadError(f"fetching the checksum {url} returned HTTP {response.status_code}")
        return parse_md5_file(response.text, f"{dataset}.zip")

    def cached_path(self, dataset: str, md5: str) -> Path:
        return self.download_dir / dataset / f"{md5}.zip"

    def fetch(self, dataset: str, expected_md5: str | None = None) -> DownloadedArchive:
        """Return a verified local copy of `<base_url>/<dataset>.zip`."""
        check_dataset_name(dataset)
        md5 = expected_md5 or self.published_md5(dataset)
        url = archive_url(self.base_url, dataset)
        target = self.cached_path(dataset, md5)
        if target.exists() and md5_of_file(target) == md5:
            log.info("reusing verified archive %s (md5 %s)", target, md5)
            return DownloadedArchive(dataset, target, md5, target.stat().st_size, url, reused=True)

        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dataset}-", suffix=".part", dir=target.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                size, actual = self._stream(url, out)
            if actual != md5:
                raise ChecksumMismatchError(
                    f"{dataset}.zip from {url} has MD5 {actual} but the published checksum is "
                    f"{md5}: the download is corrupt or has been tampered with"
                )
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        log.info("downloaded %s (%d bytes, md5 %s) to %s", url, size, md5, target)
        return DownloadedArchive(dataset, target, md5, size, url, reused=False)

    def _stream(self, url: str, out) -> tuple[int, str]:
        digest = hashlib.md5(usedforsecurity=False)
        size = 0
        try:
            with self.session.get(url, stream=True, timeout=self.timeout) as response:
                if response.status_code != 200:
                    raise DownloadError(f"fetching {url} returned HTTP {response.status_code}")
                announced = response.headers.get("Content-Length")
                started = time.monotonic()
                # read1 returns as soon as any bytes arrive, so the limits below are checked
                # even when a server drips; decode_content=False counts the bytes on the wire,
                # as Content-Length does
                while chunk := response.raw.read1(1 << 20, decode_content=False):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                    self._check_pace(url, size, time.monotonic() - started)
        except requests.RequestException as exc:
            raise DownloadError(f"downloading {url} failed: {exc}") from exc
        except DownloadError:
            raise
        except Exception as exc:  # urllib3 raises its own errors on a cut connection
            if exc.__class__.__module__.startswith("urllib3"):
                raise TruncatedDownloadError(
                    f"the connection broke while downloading {url} after {size} bytes: {exc}"
                ) from exc
            raise
        if announced is not None and size != int(announced):
            raise TruncatedDownloadError(
                f"{url} announced {announced} bytes but only {size} arrived: truncated download"
            )
        return size, digest.hexdigest()

    def _check_pace(self, url: str, size: int, elapsed: float) -> None:
        if elapsed > self.deadline:
            raise DownloadTooSlowError(f"downloading {url} took over {self.deadline:.0f} s ({size} bytes so far; "
                                       "MLRECS_HTTP_DEADLINE)")
        if elapsed > min(self.GRACE_SECONDS, self.deadline) and size / elapsed < self.min_bytes_per_second:
            raise DownloadTooSlowError(f"downloading {url} ran at {size / elapsed:.0f} bytes/s, under the minimum "
                                       f"of {self.min_bytes_per_second:.0f} (MLRECS_HTTP_MIN_BYTES_PER_SECOND)")
