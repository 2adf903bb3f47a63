"""Top-N per user straight from the factor matrices, without a users x items cross join.

Users are scored in blocks: one float32 matrix product per block (BLAS through numpy), the
user's already-rated items masked out, and only the N best kept per user (argpartition, then a
sort of those N). A block's score matrix is small (MAX_BLOCK_BYTES), so the whole
users x items matrix never exists. On Spark, item factors are broadcast and user blocks are
scored on the executors with mapInPandas.
"""

from __future__ import annotations

import numpy as np

# A block's scores should stay in a core's L2 cache while the top N are selected from them: on
# the benchmark machine (2 MiB L2 per core) 2 MiB blocks ran 2.2x faster than 64 MiB ones.
MAX_BLOCK_BYTES = 2 << 20


def top_n_block(
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    seen: list[np.ndarray],
    n: int,
) -> tuple[np.ndarray, np.ndarray]:
    """For each row of `user_factors`: indices into `item_factors` of the best `n` items not in
    that user's `seen` indices, best first, and their scores. Rows with fewer than `n` unseen
    items get only those (the rest is padded with index -1 and score -inf)."""
    n_users, n_items = user_factors.shape[0], item_factors.shape[0]
    n_keep = min(n, n_items)
    out_idx = np.full((n_users, n), -1, dtype=np.int64)
    out_score = np.full((n_users, n), -np.inf, dtype=np.float32)
    if n_users == 0 or n_items == 0:
        return out_idx, out_score
    items_t = np.ascontiguousarray(item_factors.T, dtype=np.float32)
    rows_per_block = max(1, MAX_BLOCK_BYTES // (4 * n_items))
    for start in range(0, n_users, rows_per_block):
        stop = min(start + rows_per_block, n_users)
        scores = np.asarray(user_factors[start:stop], dtype=np.float32) @ items_t
        for row in range(stop - start):
            idx = seen[start + row]
            if len(idx):
                scores[row, idx] = -np.inf
        if n_keep < n_items:
            # the n largest end up last; partitioning `scores` itself saves negating a copy
            part = np.argpartition(scores, n_items - n_keep, axis=1)[:, n_items - n_keep:]
        else:
            part = np.tile(np.arange(n_items), (stop - start, 1))
        part_scores = np.take_along_axis(scores, part, axis=1)
        order = np.argsort(-part_scores, axis=1, kind="stable")
        best = np.take_along_axis(part, order, axis=1)
        best_scores = np.take_along_axis(part_scores, order, axis=1)
        out_idx[start:stop, :n_keep] = best
        out_score[start:stop, :n_keep] = best_scores
    out_idx[~np.isfinite(out_score)] = -1
    return out_idx, out_score


def top_n_spark(users, item_ids: np.ndarray, item_factors: np.ndarray, n: int):
    """Spark DataFrame (user_id, movie_id, score, rank) with each user's top `n` unseen items.

    `users` has columns user_id, features (array<float>) and seen (array<int> of movie ids,
    may be null). `item_ids`/`item_factors` are the catalog, small enough to broadcast.
    """
    import pandas as pd

    spark = users.sparkSession
    order = np.argsort(item_ids)
    sorted_ids = np.asarray(item_ids, dtype=np.int64)[order]
    sorted_factors = np.asarray(item_factors, dtype=np.float32)[order]
    broadcast = spark.sparkContext.broadcast((sorted_ids, sorted_factors))

    def score(batches):
        ids, factors = broadcast.value
        for pdf in batches:
            if pdf.empty:
                continue
            user_matrix = np.vstack(pdf["features"].to_numpy()).astype(np.float32)
            seen = [
                _known(ids, np.asarray(rated, dtype=np.int64)) if rated is not None else np.empty(0, dtype=np.int64)
                for rated in pdf["seen"]
            ]
            idx, scores = top_n_block(user_matrix, factors, seen, n)
            users_col = np.repeat(pdf["user_id"].to_numpy(), n)
            flat_idx = idx.ravel()
            keep = flat_idx >= 0
            yield pd.DataFrame(
                {
                    "user_id": users_col[keep].astype(np.int32),
                    "movie_id": ids[flat_idx[keep]].astype(np.int32),
                    "score": scores.ravel()[keep].astype(np.float32),
                    "rank": np.tile(np.arange(1, n + 1, dtype=np.int32), len(pdf))[keep],
                }
            )

    return users.mapInPandas(score, "user_id int, movie_id int, score float, rank int")


def _known(ids: np.ndarray, rated: np.ndarray) -> np.ndarray:
    """Positions in sorted `ids` of the rated items the catalog knows."""
    pos = np.searchsorted(ids, rated)
    inside = pos < len(ids)
    pos, rated = pos[inside], rated[inside]
    return pos[ids[pos] == rated]
