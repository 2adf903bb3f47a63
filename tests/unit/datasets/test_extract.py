import zipfile

import pytest

from movielens_recs.datasets.extract import safe_extract
from movielens_recs.errors import CorruptArchiveError, UnsafeArchiveError
from tests.movielens_fixtures import csv_files, symlink_entry, zip_archive

LIMITS = dict(max_total_bytes=1 << 30, max_ratio=100.0)


def test_extracts_a_good_archive(tmp_path):
    archive = zip_archive(tmp_path / "ok.zip", "ml-test", csv_files())
    out = safe_extract(archive, tmp_path / "out", **LIMITS)
    assert (out / "ml-test" / "ratings.csv").read_bytes() == csv_files()["ratings.csv"]


@pytest.mark.parametrize(
    "entry, reason",
    [
        ("ml-test/../../evil.txt", "'..' path component"),
        ("../evil.txt", "'..' path component"),
        ("/etc/evil.txt", "absolute path"),
    ],
)
def test_refuses_entries_that_escape(tmp_path, entry, reason):
    archive = zip_archive(tmp_path / "bad.zip", "ml-test", csv_files(), extra=[(entry, b"x")])
    with pytest.raises(UnsafeArchiveError, match=reason) as err:
        safe_extract(archive, tmp_path / "out", **LIMITS)
    assert entry in str(err.value)
    assert not (tmp_path / "out").exists()
    assert not (tmp_path.parent / "evil.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.zip"], "no staging folder may be left behind"


def test_refuses_symbolic_links(tmp_path):
    archive = zip_archive(
        tmp_path / "link.zip", "ml-test", csv_files(), extra=[symlink_entry("ml-test/movies.csv.lnk", "/etc/passwd")]
    )
    with pytest.raises(UnsafeArchiveError, match="'ml-test/movies.csv.lnk': symbolic link"):
        safe_extract(archive, tmp_path / "out", **LIMITS)
    assert not (tmp_path / "out").exists()


def test_refuses_absurd_compression_ratio(tmp_path):
    archive = zip_archive(tmp_path / "bomb.zip", "ml-test", {"ratings.csv": b"\0" * (50 << 20)})
    with pytest.raises(UnsafeArchiveError, match=r"ml-test/ratings.csv'.*compression ratio \d+:1 exceeds 100:1"):
        safe_extract(archive, tmp_path / "out", **LIMITS)


def test_refuses_archives_over_the_total_size_limit(tmp_path):
    archive = zip_archive(tmp_path / "big.zip", "ml-test", csv_files())
    with pytest.raises(UnsafeArchiveError, match="over the limit of 10"):
        safe_extract(archive, tmp_path / "out", max_total_bytes=10, max_ratio=100.0)


def test_entry_larger_than_its_header_announces_is_refused(tmp_path):
    """A header can lie about size; bytes are counted while writing."""
    archive = zip_archive(tmp_path / "liar.zip", "ml-test", {"ratings.csv": b"a" * 5000})
    data = bytearray(archive.read_bytes())
    # patch the central directory's uncompressed size of the only entry to 10 bytes
    with zipfile.ZipFile(archive) as zf:
        info = zf.infolist()[0]
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24 : cd + 28] = (10).to_bytes(4, "little")
    lh = info.header_offset
    data[lh + 22 : lh + 26] = (10).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    with pytest.raises((UnsafeArchiveError, CorruptArchiveError)):
        safe_extract(archive, tmp_path / "out", **LIMITS)
    assert not (tmp_path / "out").exists()


def test_truncated_archive_is_corrupt(tmp_path):
    archive = zip_archive(tmp_path / "cut.zip", "ml-test", csv_files())
    archive.write_bytes(archive.read_bytes()[:-40])
    with pytest.raises(CorruptArchiveError, match="cut.zip"):
        safe_extract(archive, tmp_path / "out", **LIMITS)
