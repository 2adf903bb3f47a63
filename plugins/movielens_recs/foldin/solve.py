"""Fold new ratings into a trained model: each user's factor vector solved against the model's
fixed item factors, with the objective ALS itself minimised for that user.

ALS alternates two least-squares steps; its last step solves every user's vector from the item
factors. Redoing only that step, for only the users with new ratings, gives them the vector a
retrain would give if the items stayed put (Oryx 2's speed layer does the same). With Y the item
factors of the items a user rated, n_u their number, and lambda the model's regParam, Spark
solves (mllib ALS, `computeFactors`, Cholesky):

    explicit:  (Y'Y + lambda n_u I) x = Y'r
    implicit:  (Y_all'Y_all + Y'(C - I)Y + lambda n+_u I) x = Y'C p      (Hu, Koren and Volinsky)
               c = 1 + alpha |pref|, p = 1 where pref > 0 else 0, n+_u = how many prefs are > 0

The rating model fits the explicit step to what the biases leave (r - mu - b_u - b_i), so a
folded user first gets b_u from the same damped formula as models/bias.py. Users are solved in
batches of one padded tensor each (numpy's batched matmul and solve), so the same code serves a
few hundred users on a driver and millions in Spark's mapInPandas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from movielens_recs.models.topn import positions

# Floats in the padded (users, ratings, rank) tensor of one batch: 4M x 8 bytes = 32 MiB.
BATCH_FLOATS = 4 << 20


@dataclass(frozen=True)
class ItemFactors:
    """One model's item factors, ids sorted so that lookups are a binary search."""

    ids: np.ndarray  # int64, sorted
    matrix: np.ndarray  # float64 (items, rank)

    @classmethod
    def from_arrays(cls, ids, features) -> "ItemFactors":
        ids = np.asarray(ids, dtype=np.int64)
        matrix = np.asarray(features, dtype=np.float64).reshape(len(ids), -1)
        order = np.argsort(ids, kind="stable")
        return cls(ids[order], matrix[order])

    def positions(self, movie_ids: np.ndarray) -> np.ndarray:
        """Row of each movie in `matrix`, -1 for a movie the model has no factors for."""
        return positions(self.ids, movie_ids)


def solve(items: np.ndarray, user: np.ndarray, item: np.ndarray, weight: np.ndarray, target: np.ndarray,
          reg: np.ndarray, n_users: int, base: np.ndarray | None = None) -> np.ndarray:
    """Each user's x in (base + sum of w y y' + reg_u I) x = sum of t y, over that user's rows.

    `user` (0..n_users-1), `item` (rows of `items`), `weight`, `target`: one entry per rating;
    `reg`: lambda x count, per user; `base`: Y_all'Y_all for the implicit step, else nothing.
    Users are padded to their batch's longest history, batches sorted by length so that little
    of each tensor is padding."""
    rank = items.shape[1]
    out = np.zeros((n_users, rank))
    if n_users == 0 or len(user) == 0:
        return out  # no ratings: no information, the zero vector (such users are not scored)
    order = np.argsort(user, kind="stable")
    item, weight, target = item[order], weight[order], target[order]
    counts = np.bincount(user, minlength=n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    by_length = np.argsort(counts, kind="stable")
    first = 0
    while first < n_users:
        longest = max(int(counts[by_length[first]]), 1)
        size = max(1, BATCH_FLOATS // (longest * rank))
        # the batch ends before a user whose history would make the tensor too big
        last = first + 1
        while last < n_users and last - first < size and \
                (last - first + 1) * max(int(counts[by_length[last]]), 1) * rank <= BATCH_FLOATS:
            last += 1
        batch = by_length[first:last]
        longest = max(int(counts[batch].max()), 1)
        slot = np.arange(longest)
        valid = slot[None, :] < counts[batch, None]
        at = np.where(valid, starts[batch, None] + slot[None, :], 0)
        ys = items[item[at]] * valid[..., None]  # (batch, longest, rank), padding rows zero
        w = np.where(valid, weight[at], 0.0)
        t = np.where(valid, target[at], 0.0)
        a = np.matmul(np.swapaxes(ys * w[..., None], 1, 2), ys)
        if base is not None:
            a += base
        a[:, np.arange(rank), np.arange(rank)] += reg[batch, None]
        b = np.einsum("urk,ur->uk", ys, t)
        a[counts[batch] == 0] = np.eye(rank)  # a user without ratings here: x = 0, not a singular system
        out[batch] = np.linalg.solve(a, b[..., None])[..., 0]
        first = last
    return out


def explicit(items: np.ndarray, user: np.ndarray, item: np.ndarray, value: np.ndarray, reg_param: float,
             n_users: int) -> np.ndarray:
    """The explicit step: least squares of `value` (the ratings, or the rating model's residuals)."""
    counts = np.bincount(user, minlength=n_users).astype(np.float64)
    return solve(items, user, item, np.ones(len(value)), np.asarray(value, dtype=np.float64),
                 reg_param * counts, n_users)


def implicit(items: np.ndarray, user: np.ndarray, item: np.ndarray, preference: np.ndarray, reg_param: float,
             alpha: float, n_users: int, gram: np.ndarray | None = None) -> np.ndarray:
    """The implicit step, with Spark's extension for negative preferences: confidence grows with
    |preference|, and a preference at or below zero means "not liked" (p = 0). `gram`: Y'Y over
    every item of the model (computed once per model and passed in)."""
    preference = np.asarray(preference, dtype=np.float64)
    c1 = alpha * np.abs(preference)
    positive = preference > 0
    target = np.where(positive, 1.0 + c1, 0.0)
    positives = np.bincount(user, weights=positive.astype(np.float64), minlength=n_users)
    if gram is None:
        gram = items.T @ items
    return solve(items, user, item, c1, target, reg_param * positives, n_users, base=gram)


def user_biases(user: np.ndarray, residual_of_items: np.ndarray, damping: float, n_users: int) -> np.ndarray:
    """b_u = sum of (r - mu - b_i) / (damping + n_u), as models/bias.py fits it."""
    sums = np.bincount(user, weights=residual_of_items, minlength=n_users)
    return sums / (damping + np.bincount(user, minlength=n_users))
