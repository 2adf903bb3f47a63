"""Read every MovieLens layout into one schema.

Three layouts exist across the releases:
- CSV with a header (ml-latest-small, ml-latest, ml-20m, ml-25m, ml-32m): ratings.csv, movies.csv;
- `::`-separated without header (ml-1m, ml-10m): ratings.dat, movies.dat;
- ml-100k: tab-separated u.data and pipe-separated latin-1 u.item with 19 genre flags.

Ratings are streamed in Arrow record batches so that ml-32m never has to fit in memory twice;
movies are small and read whole. Any file that does not match its layout raises SchemaError
naming the file and what is wrong with it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from movielens_recs.errors import SchemaError

RATINGS_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.int32()),
        pa.field("movie_id", pa.int32()),
        pa.field("rating", pa.float32()),
        pa.field("rated_at", pa.timestamp("ms", tz="UTC")),
    ]
)
MOVIES_SCHEMA = pa.schema(
    [
        pa.field("movie_id", pa.int32()),
        pa.field("title", pa.string()),
        pa.field("genres", pa.string()),
    ]
)
NO_GENRES = "(no genres listed)"

# ml-100k's u.genre, for archives that lack it
_ML100K_GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
]  # fmt: skip

_BLOCK_SIZE = 64 << 20


@dataclass(frozen=True)
class MovieLensFiles:
    layout: str  # "csv", "dat" or "100k"
    ratings: Path
    movies: Path
    genres: Path | None = None


RATINGS_FILES = ("ratings.csv", "ratings.dat", "u.data")


def locate(root: Path) -> MovieLensFiles:
    """Find the ratings and movies files in an unpacked archive (they sit one folder down).
    More than one ratings file is an error naming them all: which one is the release cannot be
    guessed, and a stray one must never win silently."""
    root = Path(root)
    folders = [root, *sorted(p for p in root.iterdir() if p.is_dir())]
    found = [folder / name for folder in folders for name in RATINGS_FILES if (folder / name).is_file()]
    if not found:
        raise SchemaError(f"no MovieLens ratings file in {root}: expected ratings.csv, ratings.dat or u.data")
    if len(found) > 1:
        raise SchemaError("more than one ratings file in the archive: "
                          + ", ".join(str(path.relative_to(root)) for path in found))
    ratings = found[0]
    folder = ratings.parent
    if ratings.name == "ratings.csv":
        return MovieLensFiles("csv", ratings, _require(folder / "movies.csv"))
    if ratings.name == "ratings.dat":
        return MovieLensFiles("dat", ratings, _require(folder / "movies.dat"))
    genre = folder / "u.genre"
    return MovieLensFiles("100k", ratings, _require(folder / "u.item"), genre if genre.is_file() else None)


def _require(path: Path) -> Path:
    if not path.is_file():
        raise SchemaError(f"{path.name} is missing beside the ratings file in {path.parent}")
    return path


# Epoch seconds a millisecond timestamp can hold; beyond them the cast fails.
_MAX_SECONDS = (2**63 - 1) // 1000


def _to_unified(path: Path, first_row: int, user, movie, rating, seconds) -> pa.RecordBatch:
    try:
        rated_at = seconds.cast(pa.timestamp("s", tz="UTC")).cast(RATINGS_SCHEMA.field("rated_at").type)
    except pa.ArrowInvalid:
        bad = pc.or_(pc.greater(pc.abs(seconds), _MAX_SECONDS), pc.is_null(seconds))
        index = pc.index(bad, True).as_py()
        raise SchemaError(f"{path.name} row {first_row + index}: timestamp {seconds[index].as_py()} is out of range "
                          "(epoch seconds)") from None
    return pa.RecordBatch.from_arrays([user, movie, rating, rated_at], schema=RATINGS_SCHEMA)


def _csv_header(path: Path) -> list[str]:
    # utf-8-sig: spreadsheet exports start with a byte-order mark, which is not part of the header
    with open(path, "r", encoding="utf-8-sig", errors="replace", newline="") as fh:
        first = fh.readline()
    return next(csv.reader([first]), []) if first else []


def _require_columns(path: Path, found: list[str], required: list[str]) -> None:
    missing = [c for c in required if c not in found]
    if missing:
        raise SchemaError(
            f"{path.name} is missing column(s) {', '.join(missing)} "
            f"(found: {', '.join(found) or 'no header'})"
        )


def _stream(path: Path, read_options, parse_options, convert_options) -> Iterator[pa.RecordBatch]:
    try:
        reader = pacsv.open_csv(
            path, read_options=read_options, parse_options=parse_options, convert_options=convert_options
        )
        for batch in reader:
            yield batch
    except (pa.ArrowInvalid, pa.ArrowKeyError) as exc:
        raise SchemaError(f"{path.name} does not match its MovieLens layout: {exc}") from exc


def iter_ratings(files: MovieLensFiles) -> Iterator[pa.RecordBatch]:
    if files.layout == "csv":
        columns = ["userId", "movieId", "rating", "timestamp"]
        _require_columns(files.ratings, _csv_header(files.ratings), columns)
        types = {"userId": pa.int32(), "movieId": pa.int32(), "rating": pa.float32(), "timestamp": pa.int64()}
        batches = _stream(
            files.ratings,
            pacsv.ReadOptions(block_size=_BLOCK_SIZE),
            pacsv.ParseOptions(),
            pacsv.ConvertOptions(column_types=types, include_columns=columns),
        )
        names = columns
    elif files.layout == "dat":
        # "1::1193::5::978300760" split on ':' gives seven fields, every other one empty.
        names = ["f0", "f2", "f4", "f6"]
        types = {"f0": pa.int32(), "f2": pa.int32(), "f4": pa.float32(), "f6": pa.int64()}
        batches = _stream(
            files.ratings,
            pacsv.ReadOptions(block_size=_BLOCK_SIZE, column_names=[f"f{i}" for i in range(7)]),
            pacsv.ParseOptions(delimiter=":", quote_char=False),
            pacsv.ConvertOptions(column_types=types, include_columns=names),
        )
    elif files.layout == "100k":
        names = ["user", "item", "rating", "ts"]
        types = {"user": pa.int32(), "item": pa.int32(), "rating": pa.float32(), "ts": pa.int64()}
        batches = _stream(
            files.ratings,
            pacsv.ReadOptions(block_size=_BLOCK_SIZE, column_names=names),
            pacsv.ParseOptions(delimiter="\t", quote_char=False),
            pacsv.ConvertOptions(column_types=types),
        )
    else:  # pragma: no cover - locate() only returns the three above
        raise SchemaError(f"unknown layout {files.layout}")
    row = 1
    for batch in batches:
        yield _to_unified(files.ratings, row, *(batch.column(n) for n in names))
        row += batch.num_rows
    if row == 1:  # raised before the snapshot is marked complete (SnapshotStore.write)
        raise SchemaError(f"{files.ratings.name} has no ratings: nothing after the header")


def _decode(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # ml-1m and ml-100k are ISO-8859-1
        return raw.decode("latin-1")


def read_movies(files: MovieLensFiles) -> pa.Table:
    if files.layout == "csv":
        columns = ["movieId", "title", "genres"]
        _require_columns(files.movies, _csv_header(files.movies), columns)
        try:
            table = pacsv.read_csv(
                files.movies,
                # a quoted title may hold a newline; without this, whether it parses depends on
                # where the reader's blocks happen to split the file
                parse_options=pacsv.ParseOptions(newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(
                    column_types={"movieId": pa.int32(), "title": pa.string(), "genres": pa.string()},
                    include_columns=columns,
                ),
            )
        except pa.ArrowInvalid as exc:
            raise SchemaError(f"{files.movies.name} does not match its MovieLens layout: {exc}") from exc
        return pa.Table.from_arrays([table.column(c) for c in columns], schema=MOVIES_SCHEMA)

    ids, titles, genres = [], [], []
    if files.layout == "dat":
        rows = (line.split("::") for line in _decode(files.movies).splitlines() if line.strip())
        expected = 3
    else:
        text = files.movies.read_bytes().decode("latin-1")
        rows = csv.reader(io.StringIO(text), delimiter="|", quoting=csv.QUOTE_NONE)
        expected = 5 + len(_ML100K_GENRES)
        genre_names = _ml100k_genre_names(files.genres)
    for lineno, row in enumerate(rows, start=1):
        if not row:
            continue
        if len(row) != expected:
            raise SchemaError(f"{files.movies.name} line {lineno}: expected {expected} fields, got {len(row)}")
        try:
            movie_id = int(row[0])
        except ValueError:
            raise SchemaError(
                f"{files.movies.name} line {lineno}: movie id {row[0]!r} is not an integer"
            ) from None
        if not 0 < movie_id < 2**31:
            raise SchemaError(f"{files.movies.name} line {lineno}: movie id {movie_id} is out of range (1 to {2**31 - 1})")
        ids.append(movie_id)
        titles.append(row[1])
        if files.layout == "dat":
            genres.append(row[2])
        else:
            flagged = [g for g, flag in zip(genre_names, row[5:]) if flag.strip() == "1"]
            genres.append("|".join(flagged) or NO_GENRES)
    return pa.Table.from_arrays(
        [pa.array(ids, pa.int32()), pa.array(titles, pa.string()), pa.array(genres, pa.string())],
        schema=MOVIES_SCHEMA,
    )


def _ml100k_genre_names(path: Path | None) -> list[str]:
    if path is None:
        return list(_ML100K_GENRES)
    pairs = []
    for lineno, line in enumerate(path.read_bytes().decode("latin-1").splitlines(), start=1):
        if "|" in line:
            name, index = line.rsplit("|", 1)
            try:
                pairs.append((int(index), name))
            except ValueError:
                raise SchemaError(f"{path.name} line {lineno}: genre index {index!r} is not an integer") from None
    names = [name for _, name in sorted(pairs)]
    if len(names) != len(_ML100K_GENRES):
        raise SchemaError(f"{path.name} lists {len(names)} genres, expected {len(_ML100K_GENRES)}")
    return names
