"""Malformed archives and files, served over HTTP on 127.0.0.1 to the download and snapshot stages
as an adversarial mirror or a broken export would: each fails at once with an error naming the
problem, is not retried, leaves no snapshot behind, and writes nothing outside the configured
folders."""

import socket
import stat
import threading
import time
import warnings
import zipfile

import pytest
from airflow.sdk.exceptions import AirflowFailException

from movielens_recs import ingest
from movielens_recs.datasets import readers
from movielens_recs.datasets.checksum import parse_md5_file
from movielens_recs.datasets.extract import safe_extract
from movielens_recs.errors import (
    ChecksumConflictError,
    DownloadTooSlowError,
    InvalidDatasetName,
    PipelineInputError,
    SchemaError,
    UnsafeArchiveError,
)
from movielens_recs.lake.snapshot import SnapshotStore
from tests.movielens_fixtures import GOOD_MOVIES, GOOD_RATINGS, csv_files
from tests.unit.test_ingest import _left_behind, _run, _serve


def _snapshot(settings, dataset="ml-test"):
    return _run(settings, dataset)[2]


def failing(settings, tmp_path, match, error=PipelineInputError):
    with pytest.raises(error, match=match) as raised:
        _snapshot(settings)
    assert _left_behind(settings) == []
    return raised.value


# 1. decoy data -------------------------------------------------------------------------------
def test_a_second_ratings_file_is_an_error_naming_both(dataset_server, settings_factory, tmp_path):
    decoy = {"a-extra/ratings.csv": csv_files()["ratings.csv"], "a-extra/movies.csv": csv_files()["movies.csv"]}
    _serve(dataset_server, csv_files(), extra=decoy.items())
    failing(settings_factory(dataset_server.url), tmp_path,
            r"more than one ratings file in the archive: a-extra/ratings.csv, ml-test/ratings.csv", SchemaError)


def test_two_entries_with_one_name_are_an_error_naming_it(dataset_server, settings_factory, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate it is told to write
        _serve(dataset_server, csv_files(), extra=[("ml-test/ratings.csv", b"userId,movieId,rating,timestamp\n9,9,1,1\n")])
    failing(settings_factory(dataset_server.url), tmp_path, r"entries with the same name.*ml-test/ratings.csv",
            UnsafeArchiveError)


# 2. errors that name the file, the row or line, and the value; never retried -------------------
def test_an_out_of_range_timestamp_names_the_row_and_value(dataset_server, settings_factory, tmp_path):
    rows = GOOD_RATINGS + [(3, 1, 4.0, 10**17)]
    _serve(dataset_server, csv_files(ratings=rows))
    failing(settings_factory(dataset_server.url), tmp_path,
            r"ratings.csv row 6: timestamp 100000000000000000 is out of range", SchemaError)


@pytest.mark.parametrize("layout", ["dat", "100k"])
def test_an_out_of_range_movie_id_names_the_line_and_value(dataset_server, settings_factory, tmp_path, layout):
    if layout == "dat":
        files = {"ratings.dat": b"1::1::5::978300760\n",
                 "movies.dat": b"1::Toy Story (1995)::Animation\n3000000000::Too Big (1995)::Drama\n"}
        name = "movies.dat"
    else:
        item = "|".join(["3000000000", "Too Big (1995)", "01-Jan-1995", "", "http://x"] + ["0"] * 19)
        files = {"u.data": b"1\t1\t5\t881250949\n", "u.item": ("1|Toy|01-Jan-1995||http://x|" + "|".join(["0"] * 19)
                                                             + "\n" + item + "\n").encode()}
        name = "u.item"
    _serve(dataset_server, files)
    failing(settings_factory(dataset_server.url), tmp_path, rf"{name} line 2: movie id 3000000000 is out of range",
            SchemaError)


def test_a_non_numeric_genre_index_names_the_line_and_value(dataset_server, settings_factory, tmp_path):
    files = {"u.data": b"1\t1\t5\t881250949\n",
             "u.item": ("1|Toy|01-Jan-1995||http://x|" + "|".join(["0"] * 19) + "\n").encode(),
             "u.genre": b"unknown|0\nAction|one\n"}
    _serve(dataset_server, files)
    failing(settings_factory(dataset_server.url), tmp_path, r"u.genre line 2: genre index 'one' is not an integer",
            SchemaError)


def test_the_snapshot_task_fails_these_at_once_without_retries(dataset_server, settings_factory, monkeypatch, tmp_path):
    from movielens_recs.orchestration import tasks

    settings = settings_factory(dataset_server.url)
    _serve(dataset_server, csv_files(ratings=GOOD_RATINGS + [(3, 1, 4.0, 10**17)]))
    monkeypatch.setattr(tasks.Settings, "from_env", classmethod(lambda cls, env=None: settings))
    downloaded = tasks.download("ml-test")
    with pytest.raises(AirflowFailException, match="SchemaError: ratings.csv row 6"):
        tasks.snapshot(downloaded)


# 3. dataset names --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["./../etc", "../etc", "ml/../../x", "", ".hidden", "a b", "x" * 101])
def test_a_dataset_name_that_could_escape_its_folders_is_refused_before_anything_is_written(
        dataset_server, settings_factory, tmp_path, name):
    (dataset_server.directory / "etc.zip.md5").write_text("0" * 32 + "\n")  # a bare-hash checksum
    settings = settings_factory(dataset_server.url)
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(InvalidDatasetName, match="invalid dataset name"):
        ingest.download(settings, SnapshotStore(settings.lake_uri), name)
    with pytest.raises(InvalidDatasetName):
        ingest.snapshot(settings, SnapshotStore(settings.lake_uri), name, "0" * 32)
    assert sorted(tmp_path.rglob("*")) == before


def test_the_sinks_and_the_api_use_the_same_check():
    from movielens_recs.publish.sinks import Namespace

    with pytest.raises(InvalidDatasetName):
        Namespace("../etc", "mlrecs")
    assert Namespace("ml-latest-small", "mlrecs").pg_schema == "mlrecs_ml_latest_small"


# 4. a byte-order mark ------------------------------------------------------------------------
def test_a_utf8_bom_is_accepted(dataset_server, settings_factory):
    files = {name: b"\xef\xbb\xbf" + data if name.endswith(".csv") else data for name, data in csv_files().items()}
    _serve(dataset_server, files)
    snap = _snapshot(settings_factory(dataset_server.url))
    assert (snap["ratings_rows"], snap["movies_rows"]) == (len(GOOD_RATINGS), len(GOOD_MOVIES))


# 5. zip bombs made of many small entries -----------------------------------------------------
def test_many_small_entries_that_unpack_to_far_more_than_their_size_are_refused(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(40):
            zf.writestr(f"ml/zeros-{i}.bin", b"\0" * (512 << 10))  # each under the per-entry threshold
    with pytest.raises(UnsafeArchiveError, match=r"the archive's entries unpack to 20971520 bytes .* ratio of \d+:1 over"):
        safe_extract(archive, tmp_path / "out", max_total_bytes=1 << 30, max_ratio=100)
    assert not (tmp_path / "out").exists() and [p.name for p in tmp_path.iterdir()] == ["bomb.zip"]


def test_device_entries_are_refused(tmp_path):
    archive = tmp_path / "dev.zip"
    info = zipfile.ZipInfo("ml/null")
    info.external_attr = (stat.S_IFCHR | 0o666) << 16
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(info, b"")
    with pytest.raises(UnsafeArchiveError, match="refused entry 'ml/null': not a regular file"):
        safe_extract(archive, tmp_path / "out", max_total_bytes=1 << 30, max_ratio=100)


# 6. a deadline and a minimum rate for the whole download --------------------------------------
@pytest.fixture
def dripping_server():
    """Announces 1 MB, then sends one byte every 0.2 s: each read arrives well within any read timeout."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    stop = threading.Event()

    def serve():
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            request = conn.recv(65536).decode(errors="replace")
            if ".md5" in request.split("\r\n", 1)[0]:
                body = b"MD5 (ml-slow.zip) = " + b"0" * 32 + b"\n"
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
                conn.close()
                continue
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\nConnection: close\r\n\r\n")
            try:
                while not stop.is_set():
                    conn.sendall(b"x")
                    time.sleep(0.2)
            except OSError:
                pass
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    stop.set()
    thread.join(timeout=5)
    sock.close()


@pytest.mark.parametrize("limits, reason", [
    ({"MLRECS_HTTP_DEADLINE": 2, "MLRECS_HTTP_MIN_BYTES_PER_SECOND": 0}, r"took over 2 s"),
    ({"MLRECS_HTTP_MIN_BYTES_PER_SECOND": 1000}, r"ran at \d+ bytes/s, under the minimum of 1000"),
])
def test_a_dripping_server_is_cut_off(dripping_server, settings_factory, tmp_path, monkeypatch, limits, reason):
    from movielens_recs.datasets.download import ArchiveDownloader

    monkeypatch.setattr(ArchiveDownloader, "GRACE_SECONDS", 1.0)
    settings = settings_factory(dripping_server, **limits)
    started = time.monotonic()
    with pytest.raises(DownloadTooSlowError, match=reason):
        ingest.download(settings, SnapshotStore(settings.lake_uri), "ml-slow")
    assert time.monotonic() - started < 10
    assert list(tmp_path.rglob("*.part")) == []


# 7. quoted newlines, at every size ---------------------------------------------------------------
@pytest.mark.parametrize("large", [False, True], ids=["small", "straddling-a-block"])
def test_a_quoted_newline_in_a_title_reads_the_same_at_every_size(tmp_path, large):
    """pyarrow reads a CSV in blocks of 1 MiB cut at newlines: in the large file the title's own
    newline is the last one before the first cut."""
    folder = tmp_path / "ml"
    folder.mkdir()
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n")
    text = "movieId,title,genres\n"
    movie_id = 10
    while large and len(text) < (1 << 20) - 60:
        text += f'{movie_id},"Filler movie {movie_id} (1999)",Drama\n'
        movie_id += 1
    if large:  # pad the last filler title so that the quoted newline falls just before 1 MiB
        text = text[:-len(',Drama\n') - 1] + "x" * ((1 << 20) - 12 - len(text)) + '",Drama\n'
    text += '1,"Two\nLines (1995)",Comedy\n'
    assert not large or text.index("Two\n") + 3 < (1 << 20) < len(text.encode())
    (folder / "movies.csv").write_text(text)
    movies = readers.read_movies(readers.locate(tmp_path))
    assert movies.num_rows == movie_id - 10 + 1
    assert movies.column("title").to_pylist()[-1] == "Two\nLines (1995)"


# and: a header-only ratings file, conflicting checksums ----------------------------------------
def test_a_ratings_file_with_only_a_header_fails_before_any_snapshot_is_written(dataset_server, settings_factory, tmp_path):
    _serve(dataset_server, csv_files(ratings=[]))
    failing(settings_factory(dataset_server.url), tmp_path, r"ratings.csv has no ratings: nothing after the header",
            SchemaError)


def test_conflicting_checksum_lines_are_an_error():
    text = "MD5 (ml-x.zip) = " + "a" * 32 + "\n" + "b" * 32 + "  ml-x.zip\n"
    with pytest.raises(ChecksumConflictError, match="gives it different MD5s: a{32}, b{32}"):
        parse_md5_file(text, "ml-x.zip")
    # the same hash twice, in either form or case, is no conflict
    assert parse_md5_file("MD5 (ml-x.zip) = " + "a" * 32 + "\n" + "A" * 32 + "  ml-x.zip\n", "ml-x.zip") == "a" * 32
