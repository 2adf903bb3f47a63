import pytest

from movielens_recs.datasets.checksum import parse_md5_file
from movielens_recs.errors import MissingChecksumError

HASH = "91f91ad0f0846e764ddf79cf44a0cbe1"


def test_bsd_form_as_grouplens_publishes_it():
    assert parse_md5_file(f"MD5 (ml-latest-small.zip) = {HASH}\n", "ml-latest-small.zip") == HASH


def test_gnu_form_text_and_binary_mode():
    assert parse_md5_file(f"{HASH}  ml-latest-small.zip\n", "ml-latest-small.zip") == HASH
    assert parse_md5_file(f"{HASH.upper()} *ml-latest-small.zip", "ml-latest-small.zip") == HASH


def test_picks_the_line_for_the_named_file():
    text = f"{'0' * 32}  ml-1m.zip\nMD5 (ml-latest-small.zip) = {HASH}\n"
    assert parse_md5_file(text, "ml-latest-small.zip") == HASH


def test_a_checksum_for_another_file_is_no_checksum():
    with pytest.raises(MissingChecksumError, match="has no MD5 for it"):
        parse_md5_file(f"{HASH}  ml-1m.zip\n", "ml-latest-small.zip")


def test_empty_or_garbage_is_missing():
    for text in ("", "<html>not found</html>", "MD5 (x.zip) = short"):
        with pytest.raises(MissingChecksumError):
            parse_md5_file(text, "x.zip")
