"""Include and exclude rules per dataset, from a reviewed file `rules/<dataset>.yaml`
(MLRECS_RULES_DIR) beside the suites:

    exclude:
      movies: [2959]          # withdrawn titles, by movie id
      genres: [Horror]        # every movie with one of these genres
    include:
      movies: [193609]        # promoted (new, featured), in this order of preference
      position: 3             # the first promoted movie a list gets goes at this rank
      max_per_list: 1         # at most this many promoted movies per list

They are applied where the top N is computed (recommend/topn_job.py), so every sink and the API
agree, and the recommendations suites check that no excluded movie appears. The file is checked
against the snapshot's catalog before a model is even trained: a bad schema, or a movie id or
genre the catalog does not have, fails the run at once with an error naming them, and nothing
is published.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from movielens_recs.errors import PipelineInputError


class RulesError(PipelineInputError):
    """The dataset's rules file is malformed or names what the catalog does not have."""


@dataclass(frozen=True)
class Promotion:
    """What the recommend job inserts into each list (the job's `--promote` argument)."""

    movies: tuple[int, ...] = ()
    position: int = 1
    max_per_list: int = 1

    def as_dict(self) -> dict:
        return {"movies": list(self.movies), "position": self.position, "max_per_list": self.max_per_list}


@dataclass(frozen=True)
class Rules:
    exclude_movies: tuple[int, ...] = ()
    exclude_genres: tuple[str, ...] = ()
    promotion: Promotion = Promotion()
    source: str = ""

    @classmethod
    def load(cls, rules_dir: Path, dataset: str) -> "Rules":
        """The dataset's rules; none if it has no file."""
        import yaml

        path = Path(rules_dir) / f"{dataset}.yaml"
        if not path.exists():
            return cls(source=str(path))
        try:
            document = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise RulesError(f"{path}: not valid YAML: {exc}") from None
        return cls.parse(document, str(path))

    @classmethod
    def parse(cls, document, source: str) -> "Rules":
        if not isinstance(document, dict) or set(document) - {"exclude", "include"}:
            raise RulesError(f"{source}: the top level must be a mapping with the keys 'exclude' and 'include'; "
                             f"got {sorted(document) if isinstance(document, dict) else type(document).__name__}")
        exclude = document.get("exclude") or {}
        if not isinstance(exclude, dict) or set(exclude) - {"movies", "genres"}:
            raise RulesError(f"{source}: 'exclude' takes 'movies' (a list of movie ids) and 'genres' (a list of "
                             f"genre names); got {exclude!r}")
        include = document.get("include") or {}
        if not isinstance(include, dict) or set(include) - {"movies", "position", "max_per_list"}:
            raise RulesError(f"{source}: 'include' takes 'movies' (a list of movie ids), 'position' and "
                             f"'max_per_list' (positive integers); got {include!r}")
        movies, genres = _ids(exclude.get("movies"), "exclude.movies", source), exclude.get("genres") or []
        if not isinstance(genres, list) or not all(isinstance(g, str) and g.strip() for g in genres):
            raise RulesError(f"{source}: exclude.genres must be a list of genre names; got {genres!r}")
        promoted = _ids(include.get("movies"), "include.movies", source)
        if len(set(promoted)) != len(promoted):
            raise RulesError(f"{source}: include.movies names a movie twice: {promoted}")
        both = sorted(set(promoted) & set(movies))
        if both:
            raise RulesError(f"{source}: movies both included and excluded: {both}")
        number = {}
        for key in ("position", "max_per_list"):
            value = include.get(key, 1)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise RulesError(f"{source}: include.{key} must be a positive integer; got {value!r}")
            number[key] = value
        return cls(tuple(movies), tuple(genres), Promotion(tuple(promoted), **number), source)

    def excluded_ids(self, movies: pa.Table) -> list[int]:
        """The catalog's movie ids these rules exclude; an id or genre the catalog lacks is an error
        (a typo would otherwise exclude nothing, silently)."""
        ids = set(pc.unique(movies.column("movie_id")).to_pylist())
        for key, named in (("exclude.movies", self.exclude_movies), ("include.movies", self.promotion.movies)):
            unknown = sorted(set(named) - ids)
            if unknown:
                raise RulesError(f"{self.source}: {key} names movies the catalog does not have: {unknown}")
        if not self.exclude_genres:
            return sorted(self.exclude_movies)
        genre_lists = pc.split_pattern(movies.column("genres").fill_null(""), "|")
        known_genres = set(pc.unique(pc.list_flatten(genre_lists)).to_pylist())
        missing = sorted(set(self.exclude_genres) - known_genres)
        if missing:
            raise RulesError(f"{self.source}: exclude.genres names genres the catalog does not have: {missing} "
                             f"(it has {sorted(g for g in known_genres if g)})")
        blocked = set(self.exclude_genres)
        by_genre = {movie_id for movie_id, genres in zip(movies.column("movie_id").to_pylist(), genre_lists.to_pylist())
                    if blocked.intersection(genres)}
        promoted_but_blocked = sorted(by_genre & set(self.promotion.movies))
        if promoted_but_blocked:
            raise RulesError(f"{self.source}: include.movies names movies of an excluded genre: {promoted_but_blocked}")
        return sorted(set(self.exclude_movies) | by_genre)


def _ids(value, key: str, source: str) -> list[int]:
    value = value or []
    if not isinstance(value, list) or not all(isinstance(m, int) and not isinstance(m, bool) and m > 0 for m in value):
        raise RulesError(f"{source}: {key} must be a list of positive movie ids; got {value!r}")
    return value


def promote_list(top: list[tuple[int, float]], rated: set[int], promotion: dict | None, n: int
                 ) -> list[tuple[int, float, bool]]:
    """One list's (movie_id, score, promoted), best first: topn_job.promote's rule for a list
    computed outside Spark (the fold-in's), and the two are tested to agree."""
    rows = [(movie, score, False) for movie, score in top]
    if not promotion or not promotion.get("movies") or not rows:
        return rows[:n]
    held = {movie for movie, _ in top}
    chosen = [m for m in promotion["movies"] if m not in held and m not in rated][:int(promotion.get("max_per_list", 1))]
    if not chosen:
        return rows[:n]
    at = min(int(promotion.get("position", 1)), len(rows) + 1)
    # the place's score: the item that held rank `at`, or the list's last past its end
    score = rows[at - 1][1] if at <= len(rows) else min(s for _, s in top)
    return (rows[:at - 1] + [(movie, score, True) for movie in chosen] + rows[at - 1:])[:n]
