from datetime import datetime, timezone

import pyarrow as pa
import pytest

from movielens_recs.datasets.readers import MOVIES_SCHEMA, RATINGS_SCHEMA, iter_ratings, locate, read_movies
from movielens_recs.errors import SchemaError
from tests.movielens_fixtures import GOOD_RATINGS, csv_files


def _write(folder, files: dict[str, bytes]):
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder.parent


def _ratings(files) -> list[dict]:
    return pa.Table.from_batches(list(iter_ratings(files)), schema=RATINGS_SCHEMA).to_pylist()


def _expected(rows):
    return [
        {"user_id": u, "movie_id": m, "rating": r, "rated_at": datetime.fromtimestamp(t, timezone.utc)}
        for u, m, r, t in rows
    ]


def test_csv_layout(tmp_path):
    files = locate(_write(tmp_path / "x" / "ml-latest-small", csv_files()))
    assert files.layout == "csv"
    assert _ratings(files) == _expected(GOOD_RATINGS)
    movies = read_movies(files)
    assert movies.schema == MOVIES_SCHEMA
    assert movies.to_pylist()[1] == {"movie_id": 2, "title": 'Jumanji, the "game" (1995)', "genres": "Adventure|Children|Fantasy"}


def test_dat_layout_ml_1m_latin1(tmp_path):
    ratings = "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n"
    movies = "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
    movies += "2::Caf\xe9 au lait: a movie with a colon (1993)::Comedy\n"
    root = _write(tmp_path / "x" / "ml-1m", {"ratings.dat": ratings.encode(), "movies.dat": movies.encode("latin-1")})
    files = locate(root)
    assert files.layout == "dat"
    assert _ratings(files) == _expected([(1, 1193, 5.0, 978300760), (1, 661, 3.0, 978302109), (2, 1193, 4.0, 978298413)])
    table = read_movies(files).to_pylist()
    assert table[2] == {"movie_id": 2, "title": "Caf\xe9 au lait: a movie with a colon (1993)", "genres": "Comedy"}


def test_dat_layout_ml_10m_half_stars_utf8(tmp_path):
    root = _write(
        tmp_path / "x" / "ml-10M100K",
        {"ratings.dat": b"1::122::5::838985046\n1::185::4.5::838983525\n",
         "movies.dat": "122::Boomerang (1992)::Comedy|Romance\n185::Net, The (1995)::Action|Crime|Thriller\n".encode()},
    )
    assert [r["rating"] for r in _ratings(locate(root))] == [5.0, 4.5]


def test_ml_100k_layout(tmp_path):
    genres = "unknown|0\nAction|1\nAdventure|2\nAnimation|3\nChildren's|4\nComedy|5\nCrime|6\nDocumentary|7\nDrama|8\nFantasy|9\nFilm-Noir|10\nHorror|11\nMusical|12\nMystery|13\nRomance|14\nSci-Fi|15\nThriller|16\nWar|17\nWestern|18\n\n"
    flags_toy = ["0"] * 19
    for i in (3, 4, 5):
        flags_toy[i] = "1"
    item = "1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)|" + "|".join(flags_toy) + "\n"
    item += "2|Fant\xf4mas (1913)|01-Jan-1913||url|" + "|".join(["1"] + ["0"] * 18) + "\n"
    root = _write(
        tmp_path / "x" / "ml-100k",
        {"u.data": b"196\t242\t3\t881250949\n186\t302\t3\t891717742\n", "u.item": item.encode("latin-1"), "u.genre": genres.encode()},
    )
    files = locate(root)
    assert files.layout == "100k"
    assert _ratings(files) == _expected([(196, 242, 3.0, 881250949), (186, 302, 3.0, 891717742)])
    assert read_movies(files).to_pylist() == [
        {"movie_id": 1, "title": "Toy Story (1995)", "genres": "Animation|Children's|Comedy"},
        {"movie_id": 2, "title": "Fant\xf4mas (1913)", "genres": "unknown"},
    ]


def test_csv_missing_column_is_named(tmp_path):
    files = csv_files(ratings=[(1, 1, 964982703)], ratings_header="userId,movieId,timestamp")
    with pytest.raises(SchemaError, match=r"ratings.csv is missing column\(s\) rating \(found: userId, movieId, timestamp\)"):
        list(iter_ratings(locate(_write(tmp_path / "x" / "ml-test", files))))


def test_csv_bad_value_names_the_file(tmp_path):
    files = csv_files(ratings=[(1, 1, "four", 964982703)])
    with pytest.raises(SchemaError, match="ratings.csv does not match its MovieLens layout"):
        list(iter_ratings(locate(_write(tmp_path / "x" / "ml-test", files))))


def test_dat_missing_field_is_refused(tmp_path):
    root = _write(tmp_path / "x" / "ml-1m", {"ratings.dat": b"1::1193::978300760\n", "movies.dat": b"1193::A (1975)::Drama\n"})
    with pytest.raises(SchemaError, match="ratings.dat"):
        list(iter_ratings(locate(root)))


def test_movies_dat_wrong_field_count(tmp_path):
    root = _write(tmp_path / "x" / "ml-1m", {"ratings.dat": b"1::1::5::978300760\n", "movies.dat": b"1::Only a title\n"})
    with pytest.raises(SchemaError, match="movies.dat line 1: expected 3 fields, got 2"):
        read_movies(locate(root))


def test_no_ratings_file(tmp_path):
    (tmp_path / "x" / "something").mkdir(parents=True)
    with pytest.raises(SchemaError, match="expected ratings.csv, ratings.dat or u.data"):
        locate(tmp_path / "x")


def test_movies_file_missing(tmp_path):
    root = _write(tmp_path / "x" / "ml-test", {"ratings.csv": b"userId,movieId,rating,timestamp\n"})
    with pytest.raises(SchemaError, match="movies.csv is missing"):
        locate(root)
