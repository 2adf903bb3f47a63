"""The MovieLens-shaped data generator: exact sizes, MovieLens' shape, the same bytes per seed."""

import hashlib
import zipfile

import numpy as np
import pyarrow as pa
import pytest

from movielens_recs.datasets.checksum import parse_md5_file
from movielens_recs.datasets.extract import safe_extract
from movielens_recs.datasets.readers import iter_ratings, locate, read_movies
from mlrecs_devkit.synthetic import Shape, generate, parse_size, write_archive

SMALL = Shape.for_ratings(100_000)


@pytest.fixture(scope="module")
def small():
    ratings, movies = generate(SMALL, seed=7)
    return ratings.to_pandas(), movies.to_pandas()


def test_sizes_scale_like_the_real_releases():
    assert Shape.for_ratings(25_000_095) == Shape(25_000_095, 162_541, 59_047)
    big = Shape.for_ratings(25_000_000)
    assert 160_000 < big.users < 165_000 and 58_000 < big.movies < 60_000
    assert 9_000 < SMALL.movies < 10_500 and 600 < SMALL.users < 700  # ml-latest-small: 9,742 and 610
    assert [parse_size(s) for s in ("100k", "1M", "25m", "2_500_000")] == [100_000, 1_000_000, 25_000_000, 2_500_000]
    with pytest.raises(ValueError, match="not a size"):
        parse_size("lots")


def test_exact_count_distinct_sorted_pairs_and_valid_values(small):
    ratings, movies = small
    assert len(ratings) == SMALL.ratings
    assert not ratings.duplicated(["userId", "movieId"]).any()
    assert ratings[["userId", "movieId"]].apply(tuple, axis=1).is_monotonic_increasing
    assert set(ratings["rating"].unique()) <= {x / 2 for x in range(1, 11)}
    assert set(ratings["movieId"]) <= set(movies["movieId"]) and movies["movieId"].is_unique
    assert ratings.groupby("userId").size().min() >= 20  # as in every MovieLens release
    years = ratings["timestamp"].astype("datetime64[s]").dt.year
    assert years.min() >= 1996 and years.max() <= 2019 and years.nunique() >= 20
    assert 3.2 < ratings["rating"].mean() < 3.7  # MovieLens' mean rating is about 3.5


def test_heavy_tails_like_movielens(small):
    ratings, _ = small
    per_movie = ratings.groupby("movieId").size().sort_values(ascending=False)
    assert per_movie.head(len(per_movie) // 10).sum() / len(ratings) > 0.5  # most ratings on few movies
    assert per_movie.median() <= 10  # a long tail of rarely rated ones
    per_user = ratings.groupby("userId").size()
    assert per_user.max() > 20 * per_user.median()


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    shape = Shape.for_ratings(5_000)
    first = write_archive(tmp_path / "a", "synthetic-5k", shape, seed=1)
    again = write_archive(tmp_path / "b", "synthetic-5k", shape, seed=1)
    other = write_archive(tmp_path / "c", "synthetic-5k", shape, seed=2)
    digest = lambda p: hashlib.md5(p.read_bytes()).hexdigest()  # noqa: E731
    assert digest(first) == digest(again) != digest(other)
    assert parse_md5_file((tmp_path / "a" / "synthetic-5k.zip.md5").read_text(), "synthetic-5k.zip") == digest(first)


def test_the_archive_reads_as_movielens(tmp_path):
    shape = Shape.for_ratings(5_000)
    archive = write_archive(tmp_path, "synthetic-5k", shape, seed=3)
    assert zipfile.ZipFile(archive).namelist() == ["synthetic-5k/ratings.csv", "synthetic-5k/movies.csv"]
    root = safe_extract(archive, tmp_path / "x", max_total_bytes=1 << 30, max_ratio=100.0)
    files = locate(root)
    rows = pa.Table.from_batches(list(iter_ratings(files)))
    assert rows.num_rows == shape.ratings and read_movies(files).num_rows == shape.movies
    assert np.all(np.asarray(rows.column("rating")) >= 0.5)


def test_a_name_never_stands_for_two_seeds():
    from mlrecs_devkit.synthetic import default_name

    assert default_name("1M") == "synthetic-1m"
    assert default_name("1M", 7) == "synthetic-1m-seed7"
    assert default_name("25m", 42) == default_name("25M")
