"""The fold-in section of `make bench`: is a folded-in list worth having, and is it fast enough?

Quality (`quality`, in the spark job bench_fold_in.py), on a time split: for a sample of users,
their most recent ratings are held out, and split in time into an early half A and a late half B.
- the champion is trained without any held-out rating; its lists are "unchanged";
- "fold-in": the champion's item factors, each sampled user's vector folded from their training
  ratings plus A (foldin/fold.py, the production code);
- "retrain": a model trained on everything but B.
Each ranks the movies the user has not rated (training ratings and A) with the ranking model, and
is scored by NDCG@10 against B, beside popularity (the most rated movies known at fold-in time)
on the same users. The gap closed is (fold-in - unchanged) / (retrain - unchanged).

Throughput (`throughput`): events written by the writer role for users of the served version
(ones it knows and new ones), then one fold-in of all of them with publishing, timed by phase.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa

from movielens_recs.evaluation.metrics import ranking_metrics


def split_users(ratings, fraction: float, holdout: float, seed: int, min_ratings: int = 10):
    """ratings plus `part`: "train", "early" (A) or "late" (B). A sampled user (a stable hash of
    user and seed, among users with `min_ratings`) holds out the latest `holdout` of their ratings,
    the earlier half of them A."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    by_time = Window.partitionBy("user_id").orderBy("rated_at", "movie_id")
    whole = Window.partitionBy("user_id")
    sampled = (F.pmod(F.xxhash64(F.col("user_id"), F.lit(seed)), F.lit(10_000)) < int(fraction * 10_000)) & \
        (F.col("n") >= min_ratings)
    held = F.floor(F.col("n") * holdout)
    return (ratings.withColumn("pos", F.row_number().over(by_time)).withColumn("n", F.count("*").over(whole))
            .withColumn("part", F.when(~sampled | (F.col("pos") <= F.col("n") - held), "train")
                        .when(F.col("pos") <= F.col("n") - held + F.floor(held / 2), "early").otherwise("late"))
            .drop("pos", "n"))


def _lists(user_vectors: dict, item_ids: np.ndarray, item_matrix: np.ndarray, seen: dict, n: int) -> dict:
    from movielens_recs.models.topn import top_n_dense

    users = sorted(user_vectors)
    position = {m: i for i, m in enumerate(item_ids.tolist())}
    rows = [np.array([position[m] for m in seen.get(u, ()) if m in position], dtype=np.int64) for u in users]
    best, _ = top_n_dense(np.vstack([user_vectors[u] for u in users]).astype(np.float32),
                          item_matrix.astype(np.float32), rows, n)
    return {u: [int(item_ids[i]) for i in best[k] if i >= 0] for k, u in enumerate(users)}


def _factors(frame) -> dict:
    return {int(r["id"]): np.asarray(r["features"]) for r in frame.collect()}


def quality(spark, ratings, params, work_uri: str, k: int = 10, fraction: float = 0.3, holdout: float = 0.4,
            seed: int = 1) -> dict:
    """NDCG@k on B of the unchanged champion, the fold-in and a full retrain (see the module)."""
    from pyspark.sql import functions as F

    from movielens_recs.foldin.fold import FoldInModel
    from movielens_recs.models.store import ModelLayout
    from movielens_recs.models.training import fit_ranking_model, fit_rating_model

    parts = split_users(ratings.select("user_id", "movie_id", "rating", "rated_at"), fraction, holdout, seed).cache()
    train = parts.where(F.col("part") == "train").drop("part")
    started = time.perf_counter()
    champion_ranking = fit_ranking_model(train, params)
    champion_rating = fit_rating_model(train, params)
    champion_seconds = time.perf_counter() - started
    layout = ModelLayout(work_uri)
    champion_rating.save(layout)
    champion_ranking.write().overwrite().save(layout.ranking_als)
    started = time.perf_counter()
    retrain = fit_ranking_model(parts.where(F.col("part") != "late").drop("part"), params)
    retrain_seconds = time.perf_counter() - started

    sampled = parts.where(F.col("part") != "train").select("user_id").distinct()
    mine = parts.join(sampled, "user_id").select("user_id", "movie_id", "rating", "part").toPandas()
    known = mine[mine["part"] != "late"]
    late = mine[mine["part"] == "late"].groupby("user_id")["movie_id"].apply(set).to_dict()
    seen = known.groupby("user_id")["movie_id"].apply(set).to_dict()

    movies = pa.table({"movie_id": pa.array([], pa.int32()), "title": pa.array([], pa.string())})
    model = FoldInModel.load(work_uri, "bench", params.as_dict(), movies, (0.5, 5.0))
    started = time.perf_counter()
    folded_rows = model.recommend(pa.Table.from_pandas(known[["user_id", "movie_id", "rating"]], preserve_index=False)
                                  .cast(pa.schema([("user_id", pa.int32()), ("movie_id", pa.int32()),
                                                   ("rating", pa.float32())])), k)
    fold_seconds = time.perf_counter() - started
    folded = {}
    for user, movie in zip(folded_rows.column("user_id").to_pylist(), folded_rows.column("movie_id").to_pylist()):
        folded.setdefault(user, []).append(movie)

    def lists_of(als) -> dict:
        items = _factors(als.itemFactors)
        ids = np.array(sorted(items))
        users = {u: v for u, v in _factors(als.userFactors.join(sampled.withColumnRenamed("user_id", "id"), "id")).items()}
        return _lists(users, ids, np.vstack([items[i] for i in ids]), seen, k)

    figures = {name: ranking_metrics(lists, late, k).as_dict() for name, lists in
               (("unchanged", lists_of(champion_ranking)), ("fold_in", folded), ("retrain", lists_of(retrain)))}
    # the baseline on the same split: the movies most rated in what was known at fold-in time
    # (training ratings and A), each user's own left out
    by_count = [r["movie_id"] for r in parts.where(F.col("part") != "late").groupBy("movie_id").count()
                .orderBy(F.desc("count"), "movie_id").select("movie_id").collect()]
    popular = {u: [m for m in by_count if m not in seen.get(u, ())][:k] for u in late}
    baseline = ranking_metrics(popular, late, k).as_dict()
    gap = figures["retrain"]["ndcg_at_k"] - figures["unchanged"]["ndcg_at_k"]
    closed = (figures["fold_in"]["ndcg_at_k"] - figures["unchanged"]["ndcg_at_k"]) / gap if gap else None
    counts = parts.groupBy("part").count().toPandas().set_index("part")["count"].to_dict()
    return {"k": k, "users": len(late), "ratings": {key: int(v) for key, v in counts.items()},
            "split": {"user_fraction": fraction, "held_out_fraction": holdout, "seed": seed},
            "ndcg": {name: round(f["ndcg_at_k"], 4) for name, f in figures.items()}, "metrics": figures,
            "gap_closed": round(closed, 3) if closed is not None else None,
            "popularity": {"ndcg": round(baseline["ndcg_at_k"], 4), "metrics": baseline},
            "seconds": {"fit_champion": round(champion_seconds, 2), "fit_retrain_ranking": round(retrain_seconds, 2),
                        "fold_in": round(fold_seconds, 3)}}


def throughput(write_conn, schema: str, user_ids: list[int], movie_ids: list[int], events: int, seed: int = 1) -> dict:
    """Write `events` rating events spread evenly over `user_ids` as the writer role (the fold-in
    is timed by the caller); returns what was written."""
    from movielens_recs.foldin.events import EVENTS_TABLE

    rng = np.random.default_rng(seed)
    per_user = events // len(user_ids)
    now = datetime.now(timezone.utc)
    rows = []
    for user in user_ids:
        for movie in rng.choice(movie_ids, size=per_user, replace=False):
            rows.append((uuid.uuid4().hex, int(user), int(movie), float(rng.integers(1, 11) / 2), now))
    started = time.perf_counter()
    from psycopg import sql

    with write_conn.cursor() as cur, cur.copy(sql.SQL(
            "COPY {} (idempotency_key, user_id, movie_id, rating, rated_at) FROM STDIN").format(
            sql.Identifier(schema, EVENTS_TABLE))) as copy:
        for row in rows:
            copy.write_row(row)
    return {"events": len(rows), "users": len(user_ids), "write_seconds": round(time.perf_counter() - started, 3)}
