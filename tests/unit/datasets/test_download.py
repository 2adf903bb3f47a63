import hashlib

import pytest

from movielens_recs.datasets.download import ArchiveDownloader
from movielens_recs.errors import ChecksumMismatchError, DownloadError, MissingChecksumError, TruncatedDownloadError
from tests.conftest import write_md5
from tests.movielens_fixtures import csv_files, zip_archive


def _downloader(server, tmp_path):
    return ArchiveDownloader(server.url, tmp_path / "downloads", read_timeout=5, retries=0)


@pytest.mark.parametrize("form", ["bsd", "gnu"])
def test_fetch_verifies_and_caches(dataset_server, tmp_path, form):
    archive = zip_archive(dataset_server.directory / "ml-test.zip", "ml-test", csv_files())
    write_md5(archive, form)
    got = _downloader(dataset_server, tmp_path).fetch("ml-test")
    assert got.md5 == hashlib.md5(archive.read_bytes()).hexdigest()
    assert got.path.read_bytes() == archive.read_bytes()
    assert not got.reused
    again = _downloader(dataset_server, tmp_path).fetch("ml-test")
    assert again.reused and again.path == got.path


def test_wrong_checksum_is_refused_and_nothing_is_left(dataset_server, tmp_path):
    archive = zip_archive(dataset_server.directory / "ml-test.zip", "ml-test", csv_files())
    (dataset_server.directory / "ml-test.zip.md5").write_text(f"MD5 (ml-test.zip) = {'0' * 32}\n")
    with pytest.raises(ChecksumMismatchError, match=f"ml-test.zip from .* has MD5 {hashlib.md5(archive.read_bytes()).hexdigest()} but the published checksum is 0{{32}}"):
        _downloader(dataset_server, tmp_path).fetch("ml-test")
    assert list((tmp_path / "downloads").rglob("*")) == [tmp_path / "downloads" / "ml-test"]


def test_missing_checksum_file(dataset_server, tmp_path):
    zip_archive(dataset_server.directory / "ml-test.zip", "ml-test", csv_files())
    with pytest.raises(MissingChecksumError, match="no checksum is published at .*ml-test.zip.md5"):
        _downloader(dataset_server, tmp_path).fetch("ml-test")
    assert not (tmp_path / "downloads").exists()


def test_truncated_transfer(dataset_server, tmp_path):
    archive = zip_archive(dataset_server.directory / "ml-test.zip", "ml-test", csv_files())
    write_md5(archive)
    dataset_server.truncate("ml-test.zip", 100)
    with pytest.raises(TruncatedDownloadError, match="ml-test.zip"):
        _downloader(dataset_server, tmp_path).fetch("ml-test")
    assert list((tmp_path / "downloads").rglob("*.zip*")) == []


def test_missing_archive_is_a_download_error(dataset_server, tmp_path):
    (dataset_server.directory / "ml-test.zip.md5").write_text(f"{'a' * 32}  ml-test.zip\n")
    with pytest.raises(DownloadError, match="HTTP 404"):
        _downloader(dataset_server, tmp_path).fetch("ml-test")


def test_unreachable_server_names_the_url(tmp_path):
    downloader = ArchiveDownloader("http://127.0.0.1:9", tmp_path / "d", connect_timeout=1, retries=0)
    with pytest.raises(DownloadError, match=r"http://127.0.0.1:9/ml-test.zip.md5"):
        downloader.fetch("ml-test")


class _Flaky:
    """A server on 127.0.0.1 that answers each path with the statuses given, in turn, then 200
    with the file; it counts the requests."""

    def __init__(self, folder, statuses: dict[str, list[int]]):
        import http.server
        import threading

        self.statuses, self.requests = {k: list(v) for k, v in statuses.items()}, []
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.requests.append(self.path)
                pending = outer.statuses.get(self.path.lstrip("/"), [])
                if pending:
                    self.send_response(pending.pop(0))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                super().do_GET()

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), lambda *a, **k: Handler(*a, directory=str(folder), **k))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("status", [503, 429])
def test_a_busy_server_is_retried_until_it_answers(tmp_path, status):
    archive = zip_archive(tmp_path / "ml-test.zip", "ml-test", csv_files())
    write_md5(archive)
    server = _Flaky(tmp_path, {"ml-test.zip.md5": [status, status], "ml-test.zip": [status, status]})
    try:
        got = ArchiveDownloader(server.url, tmp_path / "downloads", read_timeout=5, retries=3).fetch("ml-test")
    finally:
        server.close()
    assert got.path.read_bytes() == archive.read_bytes()
    assert server.requests == ["/ml-test.zip.md5"] * 3 + ["/ml-test.zip"] * 3


def test_a_missing_archive_is_not_retried(tmp_path):
    archive = zip_archive(tmp_path / "ml-test.zip", "ml-test", csv_files())
    write_md5(archive)
    server = _Flaky(tmp_path, {"ml-test.zip": [404]})
    try:
        with pytest.raises(DownloadError, match="returned HTTP 404"):
            ArchiveDownloader(server.url, tmp_path / "downloads", read_timeout=5, retries=3).fetch("ml-test")
    finally:
        server.close()
    assert server.requests == ["/ml-test.zip.md5", "/ml-test.zip"]
