"""Top-N for every user on ml-latest-small, checked against Spark's own recommendForAllUsers."""

import numpy as np
import pytest

from movielens_recs import ingest
from movielens_recs.lake.snapshot import SnapshotStore
from movielens_recs.models.params import AlsParams
from movielens_recs.models.training import als_estimator
from movielens_recs.recommend.topn_job import cold_start, recommend_all
from tests.conftest import cluster_session

N = 10


@pytest.fixture(scope="module")
def spark(stack):
    session = cluster_session(stack, "tests-recommend")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def small(spark, movielens_server, tmp_path_factory):
    from movielens_recs.config import Settings

    root = tmp_path_factory.mktemp("recommend")
    settings = Settings.from_env({"MLRECS_STATE_DIR": str(root / "state"), "MLRECS_BASE_URL": movielens_server.url,
                                  "MLRECS_LAKE_URI": str(root / "lake")})
    store = SnapshotStore(settings.lake_uri)
    downloaded = ingest.download(settings, store, "ml-latest-small")
    snap = ingest.snapshot(settings, store, "ml-latest-small", downloaded["md5"])
    ratings = spark.read.parquet(snap["ratings_spark_uri"]).cache()
    movies = spark.read.parquet(snap["movies_spark_uri"]).cache()
    model = als_estimator(AlsParams(max_iter=5)).fit(ratings)
    return model, ratings, movies


def test_agrees_with_recommend_for_all_users_once_seen_movies_are_removed(small):
    model, ratings, movies = small
    ours = recommend_all(model, ratings, movies, N).toPandas()
    seen = ratings.toPandas().groupby("user_id")["movie_id"].apply(set).to_dict()
    deepest = max(len(s) for s in seen.values())
    theirs = model.recommendForAllUsers(N + deepest).toPandas()

    assert ours["user_id"].nunique() == model.userFactors.count() == len(theirs)
    ours_by_user = {u: g.sort_values("rank") for u, g in ours.groupby("user_id")}
    for row in theirs.itertuples():
        expected = [(r["movie_id"], r["rating"]) for r in row.recommendations if r["movie_id"] not in seen[row.user_id]][:N]
        got = ours_by_user[row.user_id]
        assert got["rank"].tolist() == list(range(1, N + 1))
        assert np.allclose(got["score"].to_numpy(), [s for _, s in expected], atol=1e-4)
        boundary = expected[-1][1]
        differ = set(got["movie_id"]) ^ {m for m, _ in expected}
        # the same movies, except where scores tie at the cut
        tied = {m for m, s in expected if abs(s - boundary) < 1e-4} | set(got[np.isclose(got["score"], boundary, atol=1e-4)]["movie_id"])
        assert differ <= tied, (row.user_id, differ)
        assert not set(got["movie_id"]) & seen[row.user_id]
    assert ours["title"].notna().all()


def test_cold_start_list_follows_its_rule(small):
    _, ratings, movies = small
    listed = cold_start(ratings, movies, N, min_average=3.5).toPandas()
    stats = ratings.toPandas().groupby("movie_id")["rating"].agg(["count", "mean"]).reset_index()
    eligible = stats[stats["mean"] >= 3.5].sort_values(["count", "mean", "movie_id"], ascending=[False, False, True])
    assert listed["movie_id"].tolist() == eligible["movie_id"].head(N).tolist()
    assert listed["rank"].tolist() == list(range(1, N + 1))
    assert listed["title"].notna().all()
