"""New top-N lists for users with new ratings, from a published model version's fixed item factors.

Each user's ratings (the ones the model knew plus the new events, a re-rating replacing the
earlier one) give two vectors (foldin/solve.py): the ranking model's, by its implicit step, whose
scores order the list; and the rating model's, by its explicit step on what the biases leave,
whose prediction each row carries. The list then goes through what the recommend job does for
every user: everything the user rated left out, the dataset's excluded movies never scored, the
promoted ones inserted (recommend/rules.py), predictions kept on the rating scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from movielens_recs.foldin.solve import ItemFactors, explicit, implicit, user_biases
from movielens_recs.lake.filesystem import S3Options, join, read_json, resolve
from movielens_recs.models.params import AlsParams
from movielens_recs.models.store import ModelLayout
from movielens_recs.models.topn import positions, top_n_dense
from movielens_recs.recommend.rules import promote_list


def _factors(als_uri: str, s3: S3Options | None) -> ItemFactors:
    fs, path = resolve(join(als_uri, "itemFactors"), s3)
    table = pq.read_table(path, filesystem=fs)
    features = np.asarray(pc.list_flatten(table.column("features")).to_numpy(zero_copy_only=False))
    return ItemFactors.from_arrays(table.column("id").to_numpy(), features)


@dataclass(frozen=True)
class FoldInModel:
    """What folding in needs of one model version, read once from the model store."""

    model_version: str
    params: AlsParams
    ranking: ItemFactors
    ranking_implicit: bool  # False for a version without a ranking model: it ranks by the rating model
    rating: ItemFactors
    global_mean: float
    damping: float
    item_bias: ItemFactors  # (movie_id, [b_i]); empty for a version written before the biases
    scale: tuple[float, float]
    titles: dict
    excluded: frozenset = frozenset()
    promotion: dict | None = None

    @classmethod
    def load(cls, model_uri: str, model_version: str, params: dict, movies: pa.Table,
             rating_values: tuple[float, ...], excluded=(), promotion: dict | None = None,
             s3: S3Options | None = None) -> "FoldInModel":
        layout = ModelLayout(model_uri)
        has_ranking = layout.has_ranking_model(s3)
        rating = _factors(layout.rating_als, s3)
        if layout.has_bias(s3):
            terms = read_json(layout.bias_terms, s3)
            fs, path = resolve(layout.item_bias, s3)
            biases = pq.read_table(path, filesystem=fs)
            item_bias = ItemFactors.from_arrays(biases.column("movie_id").to_numpy(),
                                                biases.column("item_bias").to_numpy())
            mean, damping = float(terms["global_mean"]), float(terms["damping"])
        else:
            item_bias, mean, damping = ItemFactors.from_arrays([], np.empty((0, 1))), 0.0, 0.0
        return cls(
            model_version=model_version, params=AlsParams.from_dict(params),
            ranking=_factors(layout.ranking_als, s3) if has_ranking else rating, ranking_implicit=has_ranking,
            rating=rating, global_mean=mean, damping=damping, item_bias=item_bias,
            scale=(min(rating_values), max(rating_values)),
            titles=dict(zip(movies.column("movie_id").to_pylist(), movies.column("title").to_pylist())),
            excluded=frozenset(excluded), promotion=promotion or None,
        )

    def known_ratings(self, model_uri: str, users: list[int], s3: S3Options | None = None) -> pa.Table:
        """What `users` had rated by the model's cutoff (its training and held-out ratings): the
        ratings the published lists were computed from."""
        layout = ModelLayout(model_uri)
        parts = []
        for uri in (layout.train, layout.test):
            fs, path = resolve(uri, s3)
            parts.append(ds.dataset(path, filesystem=fs, format="parquet").to_table(
                columns=["user_id", "movie_id", "rating"], filter=pc.field("user_id").isin(users)))
        return pa.concat_tables(parts).cast(pa.schema([("user_id", pa.int32()), ("movie_id", pa.int32()),
                                                       ("rating", pa.float32())]))

    @property
    def gram(self) -> np.ndarray:
        return self.ranking.matrix.T @ self.ranking.matrix

    def vectors(self, user: np.ndarray, movie: np.ndarray, rating: np.ndarray, n_users: int,
                gram: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ranking vectors, rating vectors, user biases), one row per user 0..n_users-1, from
        each user's ratings (`user` holds the user's row)."""
        p = self.params
        rating = np.asarray(rating, dtype=np.float64)
        b_i, b_u = np.zeros(len(movie)), np.zeros(n_users)
        if len(self.item_bias.ids):  # a version written before the biases has none
            at = self.item_bias.positions(movie)
            b_i = np.where(at >= 0, self.item_bias.matrix[np.maximum(at, 0), 0], 0.0)
            b_u = user_biases(user, rating - self.global_mean - b_i, self.damping, n_users)
        residual = rating - self.global_mean - b_u[user] - b_i

        known = self.rating.positions(movie)
        mine = known >= 0
        rating_vectors = explicit(self.rating.matrix, user[mine], known[mine], residual[mine], p.reg_param, n_users)
        if not self.ranking_implicit:
            return rating_vectors, rating_vectors, b_u
        known = self.ranking.positions(movie)
        mine = known >= 0
        preference = np.ones(len(rating)) if p.ranking_preference == "rated" else rating - 2.5
        ranking_vectors = implicit(self.ranking.matrix, user[mine], known[mine], preference[mine],
                                   p.ranking_reg_param, p.ranking_alpha, n_users,
                                   self.gram if gram is None else gram)
        return ranking_vectors, rating_vectors, b_u

    def recommend(self, ratings: pa.Table, n: int, gram: np.ndarray | None = None) -> pa.Table:
        """(user_id, rank, movie_id, title, score, predicted_rating, promoted) for every user in
        `ratings` (user_id, movie_id, rating: all of each user's ratings). A user none of whose
        movies the ranking model knows has no vector to score with, and gets no rows: readers
        keep their current list (the cold-start one, for a new user)."""
        users, user = np.unique(ratings.column("user_id").to_numpy(), return_inverse=True)
        movie = ratings.column("movie_id").to_numpy().astype(np.int64)
        rank_x, rate_x, b_u = self.vectors(user, movie, ratings.column("rating").to_numpy(), len(users), gram)
        scorable = np.bincount(user[self.ranking.positions(movie) >= 0], minlength=len(users)) > 0

        allowed = np.array([i not in self.excluded for i in self.ranking.ids.tolist()], dtype=bool)
        ids, matrix = self.ranking.ids[allowed], self.ranking.matrix[allowed]
        # each user's rated movies, as rows of the allowed items
        at = positions(ids, movie)
        hit = at >= 0
        order = np.argsort(user[hit], kind="stable")
        seen_rows = np.split(at[hit][order], np.cumsum(np.bincount(user[hit], minlength=len(users)))[:-1])
        best, scores = top_n_dense(rank_x.astype(np.float32), matrix.astype(np.float32), seen_rows, n)

        rated = [set() for _ in users]
        for u, m in zip(user.tolist(), movie.tolist()):
            rated[u].add(m)
        out = {k: [] for k in ("user", "rank", "movie_id", "score", "promoted")}
        for u in np.flatnonzero(scorable):
            top = [(int(ids[i]), float(s)) for i, s in zip(best[u], scores[u]) if i >= 0]
            for rank, (movie_id, score, promoted) in enumerate(promote_list(top, rated[u], self.promotion, n), 1):
                for key, value in zip(out, (u, rank, movie_id, score, promoted)):
                    out[key].append(value)
        row_user, listed = np.array(out["user"], dtype=np.int64), np.array(out["movie_id"], dtype=np.int64)
        return pa.table({"user_id": pa.array(users[row_user] if len(row_user) else [], pa.int32()),
                         "rank": pa.array(out["rank"], pa.int16()), "movie_id": pa.array(listed, pa.int32()),
                         "title": pa.array([self.titles.get(m) for m in listed.tolist()], pa.string()),
                         "score": pa.array(out["score"], pa.float32()),
                         "predicted_rating": pa.array(self._predict(rate_x[row_user], b_u[row_user], listed), pa.float32()),
                         "promoted": pa.array(out["promoted"], pa.bool_())})

    def _predict(self, x: np.ndarray, b_u: np.ndarray, movie_ids: np.ndarray) -> np.ndarray:
        """mu + b_u + b_i + x.y_i for each (row, movie), as RatingModel.predict: a movie without
        a bias or factors adds nothing for them; kept on the scale."""
        value = self.global_mean + b_u
        if len(self.item_bias.ids):
            at = self.item_bias.positions(movie_ids)
            value = value + np.where(at >= 0, self.item_bias.matrix[np.maximum(at, 0), 0], 0.0)
        at = self.rating.positions(movie_ids)
        factors = np.where((at >= 0)[:, None], self.rating.matrix[np.maximum(at, 0)], 0.0)
        value = value + np.einsum("rk,rk->r", x, factors)
        return np.clip(value, *self.scale)


def merge_ratings(known: pa.Table, events: pa.Table) -> pa.Table:
    """`known` plus `events` (user_id, movie_id, rating), an event replacing a known rating of the
    same movie by the same user."""
    events = events.select(["user_id", "movie_id", "rating"]).cast(known.schema)
    if known.num_rows == 0:
        return events
    key = lambda t: pc.add(pc.multiply(t.column("user_id").cast(pa.int64()), 1 << 32), t.column("movie_id").cast(pa.int64()))  # noqa: E731
    kept = known.filter(pc.invert(pc.is_in(key(known), value_set=key(events))))
    return pa.concat_tables([kept, events])
