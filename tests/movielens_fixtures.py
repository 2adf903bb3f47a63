"""Small MovieLens archives in each layout, written by the tests themselves."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

GOOD_RATINGS = [
    # user, movie, rating, unix seconds
    (1, 1, 4.0, 964982703),
    (1, 3, 4.5, 964981247),
    (2, 1, 3.0, 1445714835),
    (2, 2, 0.5, 1445714836),
    (3, 3, 5.0, 1306463578),
]
GOOD_MOVIES = [
    (1, "Toy Story (1995)", "Adventure|Animation|Children|Comedy|Fantasy"),
    (2, 'Jumanji, the "game" (1995)', "Adventure|Children|Fantasy"),
    (3, "Grumpier Old Men (1995)", "Comedy|Romance"),
]


def csv_files(ratings=GOOD_RATINGS, movies=GOOD_MOVIES, ratings_header="userId,movieId,rating,timestamp") -> dict[str, bytes]:
    r = ratings_header + "\n" + "".join(",".join(str(v) for v in row) + "\n" for row in ratings)
    m = "movieId,title,genres\n" + "".join(
        f'{mid},"{title.replace(chr(34), chr(34) * 2)}",{genres}\n' for mid, title, genres in movies
    )
    return {"ratings.csv": r.encode(), "movies.csv": m.encode(), "README.txt": b"test set\n"}


def zip_archive(path: Path, folder: str, files: dict[str, bytes], extra: list[tuple] = ()) -> Path:
    """`files` go under `folder/`; `extra` entries are (name or ZipInfo, data) written as given."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(f"{folder}/{name}", data)
        for name_or_info, data in extra:
            zf.writestr(name_or_info, data)
    return path


def symlink_entry(name: str, target: str) -> tuple:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return (info, target)
