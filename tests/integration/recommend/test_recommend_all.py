"""Top-N for every user on ml-latest-small, checked against Spark's own recommendForAllUsers."""

import numpy as np
import pytest

from movielens_recs import ingest
from movielens_recs.lake.snapshot import SnapshotStore
from movielens_recs.models.params import AlsParams
from movielens_recs.models.store import ModelLayout
from movielens_recs.models.training import fit_ranking_model, fit_rating_model
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
    params = AlsParams(max_iter=5, ranking_max_iter=5)
    return fit_ranking_model(ratings, params), ratings, movies, fit_rating_model(ratings, params)


def test_agrees_with_recommend_for_all_users_once_seen_movies_are_removed(small):
    model, ratings, movies, rating_model = small
    ours = recommend_all(model, rating_model, ratings, movies, N).toPandas()
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

    # each row carries the rating model's prediction for that movie, kept within the scale
    predicted = rating_model.predict(_pairs(ours, ratings)).toPandas()
    merged = ours.merge(predicted, on=["user_id", "movie_id"])
    assert len(merged) == len(ours)
    assert np.allclose(merged["predicted_rating"], merged["prediction"].clip(0.5, 5.0), atol=1e-4)
    assert merged["prediction"].max() > 4.5, "a top 10 holds movies the user is predicted to like"


def _pairs(frame, ratings):
    return ratings.sparkSession.createDataFrame(frame[["user_id", "movie_id"]].astype("int32"))


def test_cold_start_list_follows_its_rule(small):
    _, ratings, movies, _ = small
    listed = cold_start(ratings, movies, N, min_average=3.5).toPandas()
    stats = ratings.toPandas().groupby("movie_id")["rating"].agg(["count", "mean"]).reset_index()
    eligible = stats[stats["mean"] >= 3.5].sort_values(["count", "mean", "movie_id"], ascending=[False, False, True])
    assert listed["movie_id"].tolist() == eligible["movie_id"].head(N).tolist()
    assert listed["rank"].tolist() == list(range(1, N + 1))
    assert listed["title"].notna().all()


@pytest.fixture(scope="module")
def saved_model(small, tmp_path_factory):
    model, _, _, rating_model = small
    model_uri = "file://" + str(tmp_path_factory.mktemp("model"))
    layout = ModelLayout(model_uri)
    model.write().overwrite().save(layout.ranking_als)
    rating_model.save(layout)
    return model_uri


def _run(spark, small, model_uri, movies=None, top_n=N):
    from movielens_recs.config import Settings
    from movielens_recs.recommend.output import output_uri
    from movielens_recs.recommend.run import run_recommend

    _, ratings, all_movies, _ = small
    movies_uri = model_uri + "/movies_used"
    (movies if movies is not None else all_movies).write.mode("overwrite").parquet(movies_uri)
    ratings_uri = model_uri + "/ratings_used"
    ratings.write.mode("overwrite").parquet(ratings_uri)
    output = output_uri(model_uri)
    report, summary = run_recommend(
        spark, model_id="m-test", model_uri=model_uri, ratings_uri=ratings_uri, movies_uri=movies_uri,
        top_n=top_n, output=output, expectations_dir=Settings.from_env().expectations_dir,
    )
    return output, report, summary


def test_the_job_writes_validated_output_and_marks_it_publishable(spark, small, saved_model):
    from movielens_recs.recommend.output import load

    model, _, _, _ = small
    output, report, summary = _run(spark, small, saved_model)
    assert report.success, report.message("recommendations")
    assert set(report.statistics) == {"recommendations", "recommendation_users", "cold_start"}
    marker, recs, cold = load(output)
    users = model.userFactors.count()
    assert marker == {**summary, "validation": report.statistics}
    assert (summary["users"], summary["rows"], recs.num_rows) == (users, users * N, users * N)
    assert recs.column("user_id").to_pylist() == sorted(recs.column("user_id").to_pylist())
    assert cold.column("rank").to_pylist() == list(range(1, N + 1))


def test_the_models_evaluation_report_gains_the_published_lists_skew(spark, small, saved_model):
    """The recommend job adds what only it knows to the report the evaluation wrote."""
    from collections import Counter

    from movielens_recs.evaluation.breakdown import popularity_skew
    from movielens_recs.lake.filesystem import read_json, read_text, write_json
    from movielens_recs.operator_view import evaluation_report
    from movielens_recs.recommend.output import load
    from tests.unit.operator_view.test_evaluation_report import breakdown, metrics

    _, ratings, _, _ = small
    layout = ModelLayout(saved_model)
    write_json(layout.metrics, metrics())
    evaluation_report.write(layout, metrics(), breakdown())
    output, _, _ = _run(spark, small, saved_model)
    _, recs, _ = load(output)
    rated = {r["movie_id"]: r["count"] for r in ratings.groupBy("movie_id").count().collect()}
    published = read_json(layout.report_data)["published"]
    assert published == popularity_skew(Counter(recs.column("movie_id").to_pylist()), rated)
    assert 0 < published["coverage"] < 1 and published["recommendations"] == recs.num_rows
    assert "published lists (every user)" in read_text(layout.report)


def test_output_that_breaks_its_suites_is_never_marked_publishable(spark, small, saved_model):
    """A catalog missing the most recommended movies: unknown ids and missing titles."""
    from pyspark.sql import functions as F

    from movielens_recs.recommend.output import RecommendationsNotReady, load, read_marker

    _, _, movies, _ = small
    output, _, _ = _run(spark, small, saved_model)
    read_marker(output)  # the good run's marker is there ...
    top = [r.movie_id for r in spark.read.parquet(f"{output}/recommendations").groupBy("movie_id").count()
           .orderBy(F.desc("count")).limit(5).collect()]
    output, report, summary = _run(spark, small, saved_model, movies=movies.where(~F.col("movie_id").isin(top)))
    assert summary is None and not report.success
    broken = {(f.suite, f.column) for f in report.failures}
    assert ("recommendations", "movie_in_catalog") in broken and ("recommendations", "title") in broken
    with pytest.raises(RecommendationsNotReady, match="failed validation"):  # ... and the rerun removed it
        load(output)


@pytest.mark.parametrize("pandas_max_rows", [10**9, 0], ids=["pandas", "spark"])
def test_the_suites_name_each_kind_of_broken_output(spark, small, pandas_max_rows):
    """Hand-broken output: a missing user, a gap in ranks, a seen movie, NaN and out-of-order scores."""
    from pyspark.sql import functions as F

    from movielens_recs.config import Settings
    from movielens_recs.validation.recommendations_check import build_recommendation_frames, validate_recommendations

    model, ratings, movies, rating_model = small
    good = recommend_all(model, rating_model, ratings, movies, N).cache()
    users = sorted(r.user_id for r in good.select("user_id").distinct().collect())
    missing_user, gap_user, seen_user, nan_user, order_user, unrated_user = users[:6]
    seen_movie = ratings.where(F.col("user_id") == seen_user).first().movie_id
    bad = (
        good.where(F.col("user_id") != missing_user)
        .where(~((F.col("user_id") == gap_user) & (F.col("rank") == 4)))
        .withColumn("movie_id", F.when((F.col("user_id") == seen_user) & (F.col("rank") == 1), F.lit(seen_movie))
                    .otherwise(F.col("movie_id")))
        .withColumn("score", F.when((F.col("user_id") == nan_user) & (F.col("rank") == 2), F.lit(float("nan")))
                    .when((F.col("user_id") == order_user) & (F.col("rank") == 6), F.lit(99.0))
                    .otherwise(F.col("score")))
        .withColumn("predicted_rating", F.when((F.col("user_id") == unrated_user) & (F.col("rank") == 3),
                                               F.lit(None)).otherwise(F.col("predicted_rating")))
    )
    frames = build_recommendation_frames(bad, cold_start(ratings, movies, N), model.userFactors, model.itemFactors,
                                         ratings, movies, N)
    report = validate_recommendations(frames, Settings.from_env().expectations_dir, N, pandas_max_rows=pandas_max_rows)
    broken = {(f.suite, f.column): f for f in report.failures}
    assert set(broken) == {
        ("recommendations", "score_is_finite"), ("recommendations", "score_in_rank_order"),
        ("recommendations", "predicted_rating_is_finite"),
        ("recommendations", "already_rated"), ("recommendation_users", "rows = expected_rows"),
        ("recommendation_users", "max_rank = rows"),
    }, report.message("broken")
    assert broken[("recommendations", "already_rated")].unexpected_count == 1
    assert broken[("recommendations", "score_is_finite")].unexpected_count == 1
    assert broken[("recommendation_users", "rows = expected_rows")].unexpected_count == 2  # missing + gap


def test_excluded_movies_never_appear_and_lists_stay_full(spark, small):
    """The dataset's rules: the most recommended movies and the most popular one excluded."""
    from pyspark.sql import functions as F

    from movielens_recs.config import Settings
    from movielens_recs.validation.recommendations_check import build_recommendation_frames, validate_recommendations

    model, ratings, movies, rating_model = small
    good = recommend_all(model, rating_model, ratings, movies, N)
    top = [r.movie_id for r in good.groupBy("movie_id").count().orderBy(F.desc("count")).limit(3).collect()]
    excluded = top + [cold_start(ratings, movies, N).first().movie_id]
    kept = recommend_all(model, rating_model, ratings, movies, N, excluded).cache()
    kept_cold = cold_start(ratings, movies, N, excluded=excluded).cache()
    assert kept.where(F.col("movie_id").isin(excluded)).count() == 0
    assert kept_cold.where(F.col("movie_id").isin(excluded)).count() == 0 and kept_cold.count() == N
    assert kept.count() == good.count(), "every list is still N long"
    expectations = Settings.from_env().expectations_dir
    frames = build_recommendation_frames(kept, kept_cold, model.userFactors, model.itemFactors, ratings, movies, N, excluded)
    assert validate_recommendations(frames, expectations, N).success
    # the suites catch an excluded movie that gets through anyway
    frames = build_recommendation_frames(good, cold_start(ratings, movies, N), model.userFactors, model.itemFactors,
                                         ratings, movies, N, excluded)
    report = validate_recommendations(frames, expectations, N)
    broken = {(f.suite, f.column): f for f in report.failures}
    assert {("recommendations", "movie_excluded"), ("cold_start", "movie_excluded")} <= set(broken)
    assert broken[("recommendations", "movie_excluded")].unexpected_count == good.where(F.col("movie_id").isin(excluded)).count()


def test_promotions_take_their_place_on_a_hand_computed_case(spark):
    from movielens_recs.recommend.topn_job import promote

    top = spark.createDataFrame(
        [(1, r, m, s) for r, (m, s) in enumerate([(10, .9), (11, .8), (12, .7), (13, .6)], 1)]
        + [(2, r, m, s) for r, (m, s) in enumerate([(20, .5), (21, .4)], 1)]
        + [(3, r, m, s) for r, (m, s) in enumerate([(100, .9), (31, .8), (32, .7), (33, .6)], 1)],
        "user_id int, rank int, movie_id int, score float")
    ratings = spark.createDataFrame([(1, 100, 4.0)], "user_id int, movie_id int, rating float")
    got = promote(top, ratings, {"movies": [100, 101, 102], "position": 2, "max_per_list": 2}, 4, ["user_id"])
    lists = {}
    for row in got.orderBy("user_id", "rank").collect():
        lists.setdefault(row.user_id, []).append((row.rank, row.movie_id, round(row.score, 2), row.promoted))
    assert lists == {
        # 100 was rated by user 1: the next two go at ranks 2 and 3, with the score of rank 2
        1: [(1, 10, .9, False), (2, 101, .8, True), (3, 102, .8, True), (4, 11, .8, False)],
        # a short list still gets them at the position, and keeps n
        2: [(1, 20, .5, False), (2, 100, .4, True), (3, 101, .4, True), (4, 21, .4, False)],
        # a promoted movie already in the list stays where the model put it
        3: [(1, 100, .9, False), (2, 101, .8, True), (3, 102, .8, True), (4, 31, .8, False)],
    }
    cold = spark.createDataFrame([(1, 5, 30.0), (2, 6, 20.0), (3, 7, 10.0)], "rank int, movie_id int, score float")
    rows = promote(cold, ratings, {"movies": [100], "position": 5, "max_per_list": 1}, 4, []).orderBy("rank").collect()
    # past the list's end: right after it, with the last score
    assert [(r.rank, r.movie_id, r.score, r.promoted) for r in rows] == [
        (1, 5, 30.0, False), (2, 6, 20.0, False), (3, 7, 10.0, False), (4, 100, 10.0, True)]


def test_a_promoted_movie_reaches_every_list_that_can_take_it_and_the_suites_pass(spark, small):
    from pyspark.sql import functions as F

    from movielens_recs.config import Settings
    from movielens_recs.validation.recommendations_check import build_recommendation_frames, validate_recommendations

    model, ratings, movies, rating_model = small
    # a movie nobody rated before: the model has no factors for it, so only the rule can place it
    newest = movies.join(ratings, "movie_id", "left_anti").agg(F.max("movie_id")).first()[0]
    promotion = {"movies": [newest], "position": 3, "max_per_list": 1}
    recs = recommend_all(model, rating_model, ratings, movies, N, promotion=promotion).cache()
    cold = cold_start(ratings, movies, N, promotion=promotion).cache()
    users = model.userFactors.count()
    placed = recs.where(F.col("promoted"))
    assert placed.count() == users and placed.where((F.col("movie_id") != newest) | (F.col("rank") != 3)).count() == 0
    assert recs.count() == users * N and cold.where(F.col("promoted")).select("rank", "movie_id").collect() == [(3, newest)]
    frames = build_recommendation_frames(recs, cold, model.userFactors, model.itemFactors, ratings, movies, N)
    report = validate_recommendations(frames, Settings.from_env().expectations_dir, N)
    assert report.success, report.message("promoted")
