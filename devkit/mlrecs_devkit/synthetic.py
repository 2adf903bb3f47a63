"""MovieLens-shaped data at any size, for benchmarks beyond the releases at hand.

Writes `<name>.zip` in the ml-25m CSV layout (`<name>/ratings.csv` with userId,movieId,rating,
timestamp sorted by user then movie; `<name>/movies.csv` with movieId,title,genres) and its
`<name>.zip.md5` in GroupLens' form, deterministic for a seed. What makes it MovieLens-like:

- users: at least 20 ratings each (as in every MovieLens release), activity log-normal, so a few
  users rate thousands of movies and most rate a few dozen;
- movies: popularity Zipf-like, so most ratings go to few movies and a long tail is rarely rated;
- tastes: each user belongs to one of TASTES groups, and each group likes some movies more than
  others (a log-normal affinity per group and movie). A user picks movies by popularity tilted
  by the group's affinity, and rates them by it too, so what a user watched predicts what they
  will watch next better than popularity does, as in the real releases (without tastes, "most
  popular" scored NDCG@10 0.61 on these sets and no model could beat it);
- ratings: a global mean plus a per-user and a per-movie bias plus the taste plus noise, on the
  0.5-5.0 half-star scale, with half the users giving whole stars only;
- timestamps: each user active over a span of their own, between 1996 and 2019.

Sizes scale like the real sets: ml-25m has 25M ratings from 162k users on 59k movies.

    python -m mlrecs_devkit.synthetic --ratings 1M [--seed 42] [--out DIR] [--name NAME]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

ML25M_RATINGS, ML25M_USERS, ML25M_MOVIES = 25_000_095, 162_541, 59_047
MIN_PER_USER = 20
FIRST = int(datetime(1996, 1, 1, tzinfo=timezone.utc).timestamp())
LAST = int(datetime(2019, 11, 21, tzinfo=timezone.utc).timestamp())
GENRES = ["Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama",
          "Fantasy", "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance", "Sci-Fi",
          "Thriller", "War", "Western"]


@dataclass(frozen=True)
class Shape:
    ratings: int
    users: int
    movies: int

    @classmethod
    def for_ratings(cls, ratings: int) -> "Shape":
        """ml-25m's ratings per user; movies grow more slowly than ratings, as across releases."""
        users = max(2, round(ratings / (ML25M_RATINGS / ML25M_USERS)))
        # ml-latest-small (100k ratings, 9.7k movies) and ml-25m (25M, 59k) fit movies ~ ratings^0.33
        movies = max(50, round(ML25M_MOVIES * (ratings / ML25M_RATINGS) ** 0.33))
        users = min(users, ratings // MIN_PER_USER)
        return cls(ratings, users, movies)


DEFAULT_SEED = 42
# Taste groups, how strongly a group's affinity tilts which movies its users pick, and how much it
# moves their ratings (affinity ~ N(0, 1)).
TASTES = 24
TASTE_PICK = 2.0
TASTE_RATING = 0.6
RATING_NOISE = 0.5


def default_name(size: str, seed: int = DEFAULT_SEED) -> str:
    """`synthetic-1m`, or `synthetic-1m-seed7`: a name never stands for two different sets."""
    return f"synthetic-{size.lower()}" + ("" if seed == DEFAULT_SEED else f"-seed{seed}")


def parse_size(text: str) -> int:
    """`100k`, `1M`, `25m`, `2500000`."""
    text = text.strip().lower().replace("_", "")
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    number = text[:-1] if factor > 1 else text
    try:
        value = int(float(number) * factor)
    except ValueError:
        raise ValueError(f"not a size: {text!r} (use e.g. 100k, 1M, 25M)") from None
    if value < 1_000:
        raise ValueError(f"at least 1k ratings, got {value}")
    return value


def _user_counts(rng, shape: Shape) -> np.ndarray:
    """Ratings per user: log-normal activity, at least MIN_PER_USER, at most half the catalog,
    summing exactly to shape.ratings."""
    raw = rng.lognormal(mean=0.0, sigma=1.4, size=shape.users)
    extra = shape.ratings - MIN_PER_USER * shape.users
    counts = MIN_PER_USER + np.floor(raw / raw.sum() * extra).astype(np.int64)
    cap = max(MIN_PER_USER, shape.movies // 2)  # ml-25m's most active user rated about half the catalog
    counts = np.minimum(counts, cap)
    short = shape.ratings - counts.sum()
    while short > 0:  # hand out what flooring and the cap left over, to users with room
        room = np.flatnonzero(counts < cap)
        pick = rng.choice(room, size=min(short, len(room)), replace=False)
        counts[pick] += 1
        short = shape.ratings - counts.sum()
    return counts


def _pairs(rng, shape: Shape, counts: np.ndarray, popularity: np.ndarray,
           group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(user, movie) pairs, distinct and sorted, each user with exactly counts[u] movies.

    `popularity` has one row per taste group; user u draws from row group[u]. Draws with
    replacement and drops repeats, which keeps memory linear in the ratings; users left short are
    topped up in further rounds, uniformly after the first few so that a heavy user does not wait
    on the rarest movies."""
    cdf = np.cumsum(popularity, axis=1)
    cdf /= cdf[:, -1:]
    shifted_cdf = (cdf + np.arange(len(cdf))[:, None]).ravel()
    taken = np.zeros(0, dtype=np.int64)
    need = counts.copy()
    rounds = 0
    while need.sum() > 0:
        draws = need + np.ceil(need * (0.1 if rounds == 0 else 1.0)).astype(np.int64)
        users = np.repeat(np.arange(shape.users, dtype=np.int64), draws)
        if rounds < 6:
            # one search over every group's CDF, each shifted by its group number (so the rows
            # follow each other), instead of one search per group
            draws_group = group[users]
            position = np.searchsorted(shifted_cdf, rng.random(len(users)) + draws_group, side="right")
            movies = np.minimum(position - draws_group * shape.movies, shape.movies - 1)
        else:
            movies = rng.integers(0, shape.movies, len(users))
        keys = np.setdiff1d(np.unique(users * shape.movies + movies), taken, assume_unique=True)
        keys = keys[rng.permutation(len(keys))]
        users = keys // shape.movies
        order = np.argsort(users, kind="stable")
        keys, users = keys[order], users[order]
        position = np.arange(len(users)) - np.searchsorted(users, users)  # rank within the user
        taken = np.union1d(taken, keys[position < need[users]])
        need = counts - np.bincount(taken // shape.movies, minlength=shape.users)
        rounds += 1
    return taken // shape.movies, taken % shape.movies


def generate(shape: Shape, seed: int = 42) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(seed)
    counts = _user_counts(rng, shape)
    # Zipf-like popularity over a shuffled movie id order, so id does not predict popularity
    popularity = 1.0 / (np.arange(1, shape.movies + 1) + 2.0) ** 1.4
    popularity = popularity[rng.permutation(shape.movies)]
    group = rng.integers(0, TASTES, shape.users)
    affinity = rng.normal(0.0, 1.0, (TASTES, shape.movies))
    users, movies = _pairs(rng, shape, counts, popularity * np.exp(TASTE_PICK * affinity), group)

    user_bias = rng.normal(0.0, 0.45, shape.users)
    # popular movies are liked a little more, as in MovieLens
    movie_bias = rng.normal(0.0, 0.4, shape.movies) + 0.05 * np.log(popularity / popularity.mean())
    movie_bias -= movie_bias.mean()
    taste = TASTE_RATING * affinity[group[users], movies]
    raw = 3.4 + user_bias[users] + movie_bias[movies] + taste - taste.mean() + rng.normal(0.0, RATING_NOISE, len(users))
    # many users only ever give whole stars (half stars came later to MovieLens' interface)
    whole_stars = rng.random(shape.users) < 0.5
    steps = np.where(whole_stars[users], 1.0, 2.0)
    ratings = np.clip(np.round(raw * steps) / steps, 0.5, 5.0).astype(np.float32)

    start = rng.integers(FIRST, LAST - 86_400, shape.users)
    span = np.minimum(rng.exponential(3 * 365 * 86_400, shape.users).astype(np.int64) + 3_600, LAST - start)
    timestamps = start[users] + (rng.random(len(users)) * span[users]).astype(np.int64)

    movie_ids = np.sort(rng.choice(np.arange(1, shape.movies * 4), size=shape.movies, replace=False))
    table = pa.table({
        "userId": pa.array(users + 1, pa.int32()),
        "movieId": pa.array(movie_ids[movies], pa.int32()),
        "rating": pa.array(ratings),
        "timestamp": pa.array(timestamps, pa.int64()),
    })
    years = rng.integers(1920, 2020, shape.movies)
    genre_sets = ["|".join(sorted(set(rng.choice(GENRES, size=rng.integers(1, 4))))) for _ in range(shape.movies)]
    catalog = pa.table({
        "movieId": pa.array(movie_ids, pa.int32()),
        "title": [f"Synthetic Movie {m} ({y})" for m, y in zip(movie_ids, years)],
        "genres": genre_sets,
    })
    return table, catalog


def _csv(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    options = pacsv.WriteOptions(include_header=True, quoting_style="needed")
    pacsv.write_csv(table, buffer, options)
    return buffer.getvalue()


def write_archive(out_dir: Path, name: str, shape: Shape, seed: int = 42) -> Path:
    ratings, movies = generate(shape, seed)
    ratings_csv = _csv(ratings)
    out_dir.mkdir(parents=True, exist_ok=True)
    archive = out_dir / f"{name}.zip"
    tmp = archive.with_suffix(".zip.tmp")
    # fixed timestamps in the zip entries, so the same seed gives the same bytes (and MD5)
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for entry, body in ((f"{name}/ratings.csv", ratings_csv), (f"{name}/movies.csv", _csv(movies))):
            info = zipfile.ZipInfo(entry, date_time=(2019, 11, 21, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, body, compresslevel=1)
            del body
    tmp.replace(archive)
    digest = hashlib.md5()
    with open(archive, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    (out_dir / f"{name}.zip.md5").write_text(f"MD5 ({name}.zip) = {digest.hexdigest()}\n")
    return archive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a MovieLens-shaped archive (ml-25m CSV layout) and its .md5")
    parser.add_argument("--ratings", default="1M", help="how many ratings: 100k, 1M, 10M, 25M ...")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--name", default=None, help="default: synthetic-<size>[-seed<seed>]")
    parser.add_argument("--out", default=None, help="default: .local/generated")
    args = parser.parse_args(argv)
    size = parse_size(args.ratings)
    shape = Shape.for_ratings(size)
    name = args.name or default_name(args.ratings, args.seed)
    from movielens_recs.config import Settings

    out = Path(args.out) if args.out else Settings.from_env().generated_dir
    archive = write_archive(out, name, shape, args.seed)
    print(f"{archive}: {shape.ratings:,} ratings, {shape.users:,} users, {shape.movies:,} movies (seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
