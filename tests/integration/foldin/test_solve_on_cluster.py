"""The fold-in gives a user of the training data the vectors ALS itself learned for them, when
given the same ratings and the model's item factors: both models of a version, as the training
job fits and saves them on the cluster, read back the way the fold-in reads them."""

import numpy as np
import pyarrow as pa
import pytest

from movielens_recs.datasets.catalog import HALF_STARS
from movielens_recs.foldin.fold import FoldInModel
from movielens_recs.models.params import AlsParams
from movielens_recs.models.store import ModelLayout
from tests.conftest import cluster_session
from tests.integration.test_train_evaluate_on_cluster import low_rank_ratings

PREFERENCES = ("centered", "rated")


@pytest.fixture(scope="module")
def trained(stack, tmp_path_factory):
    """For each way of turning ratings into preferences: (model URI, params, ratings, what ALS learned)."""
    from movielens_recs.models.training import fit_ranking_model, fit_rating_model

    rows = low_rank_ratings(users=120, items=80, per_user=25, seed=11)
    spark = cluster_session(stack, "tests-fold-in")
    out = {}
    try:
        ratings = spark.createDataFrame([r[:3] for r in rows], "user_id int, movie_id int, rating float").cache()
        for preference in PREFERENCES:
            params = AlsParams(rank=4, max_iter=6, ranking_rank=6, ranking_max_iter=6, blocks=2,
                               ranking_preference=preference, ranking_alpha=2.0)
            uri = f"file://{tmp_path_factory.mktemp(preference)}/model"
            layout = ModelLayout(uri)
            rating_model, ranking_model = fit_rating_model(ratings, params), fit_ranking_model(ratings, params)
            rating_model.save(layout)
            ranking_model.write().overwrite().save(layout.ranking_als)
            # what the version knew of its users, as the training job leaves it
            known, held_out = ratings.randomSplit([0.8, 0.2], seed=3)
            known.write.mode("overwrite").parquet(layout.train)
            held_out.write.mode("overwrite").parquet(layout.test)
            every_pair = spark.range(1, 121).withColumnRenamed("id", "user_id").crossJoin(
                spark.range(1, 81).withColumnRenamed("id", "movie_id")).selectExpr("int(user_id)", "int(movie_id)")
            learned = {
                "predicted": rating_model.predict(every_pair, "predicted").toPandas()
                .set_index(["user_id", "movie_id"])["predicted"],
                "rating": rating_model.als.userFactors.toPandas().set_index("id")["features"],
                "ranking": ranking_model.userFactors.toPandas().set_index("id")["features"],
                "bias": rating_model.user_bias.toPandas().set_index("user_id")["user_bias"],
            }
            out[preference] = (uri, params, learned)
    finally:
        spark.stop()
    table = pa.table({"user_id": pa.array([r[0] for r in rows], pa.int32()),
                      "movie_id": pa.array([r[1] for r in rows], pa.int32()),
                      "rating": pa.array([r[2] for r in rows], pa.float32())})
    return out, table


@pytest.mark.parametrize("preference", PREFERENCES)
def test_folded_vectors_are_the_ones_als_learned(trained, preference):
    models, ratings = trained
    uri, params, learned = models[preference]
    movies = pa.table({"movie_id": pa.array(range(1, 81), pa.int32()), "title": [f"m{i}" for i in range(1, 81)]})
    model = FoldInModel.load(uri, "v", params.as_dict(), movies, HALF_STARS)
    users, user = np.unique(ratings.column("user_id").to_numpy(), return_inverse=True)
    ranking, rating, b_u = model.vectors(user, ratings.column("movie_id").to_numpy(),
                                         ratings.column("rating").to_numpy(), len(users))

    expected = np.vstack(learned["ranking"].loc[users].to_numpy())
    scale = np.abs(expected).max()
    assert scale > 0.1  # the model learned something to compare with
    # float32 factors in Spark's store: agreement to a few parts in a million of their size
    assert np.abs(ranking - expected).max() < 1e-4 * scale
    assert np.allclose(b_u, learned["bias"].loc[users].to_numpy(), atol=1e-6)
    expected = np.vstack(learned["rating"].loc[users].to_numpy())
    assert np.abs(expected).max() > 0.01
    assert np.abs(rating - expected).max() < 1e-4 * max(np.abs(expected).max(), 0.1)

    # the lists' predicted ratings are the rating model's own predictions, kept on the scale
    lists = model.recommend(ratings, 5).to_pandas()
    spark_says = learned["predicted"].loc[list(zip(lists["user_id"], lists["movie_id"]))].clip(0.5, 5.0).to_numpy()
    assert len(lists) == 5 * len(users) and np.allclose(lists["predicted_rating"], spark_says, atol=1e-3)


def test_the_spark_job_folds_in_what_the_driver_does(trained, stack, stack_env, tmp_path):
    """spark_jobs/fold_in.py through its argument contract, for known and new users, against the
    same FoldInModel called in this process."""
    import subprocess

    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    from movielens_recs.config import Settings
    from movielens_recs.foldin.fold import merge_ratings
    from movielens_recs.foldin.on_spark import FoldInJob
    from movielens_recs.spark_submit import spark_submit_argv

    models, _ = trained
    uri, params, _ = models["centered"]
    (tmp_path / "movies").mkdir()
    movies = pa.table({"movie_id": pa.array(range(1, 81), pa.int32()), "title": [f"m{i}" for i in range(1, 81)]})
    pq.write_table(movies, tmp_path / "movies" / "part-0.parquet")
    rng = np.random.default_rng(2)
    users = list(range(1, 41)) + list(range(5001, 5021))  # known to the model, and new
    new = pa.table({"user_id": pa.array(np.repeat(users, 3), pa.int32()),
                    "movie_id": pa.array(np.concatenate([rng.choice(80, 3, replace=False) + 1 for _ in users]), pa.int32()),
                    "rating": pa.array(rng.integers(1, 11, 3 * len(users)) / 2, pa.float32())})
    (tmp_path / "events").mkdir()
    pq.write_table(new, tmp_path / "events" / "part-0.parquet")
    job = FoldInJob(uri, "v", params.as_dict(), str(tmp_path / "movies"), HALF_STARS, f"file://{tmp_path}/events",
                    f"file://{tmp_path}/output", 5, excluded=(1, 2), promotion={"movies": [3], "position": 2,
                                                                               "max_per_list": 1})
    assert FoldInJob.from_argv(job.to_argv()) == job
    settings = Settings.from_env(stack_env)
    proc = subprocess.run(spark_submit_argv(settings, stack.spark_master_url(), "fold_in", job.to_argv()),
                          env=stack_env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    on_spark = ds.dataset(str(tmp_path / "output"), format="parquet", exclude_invalid_files=True).to_table()

    model = job.model()
    on_driver = model.recommend(merge_ratings(model.known_ratings(uri, users), new), 5)
    order = [("user_id", "ascending"), ("rank", "ascending")]
    got, expected = on_spark.sort_by(order).to_pandas(), on_driver.sort_by(order).to_pandas()
    assert len(expected) == 5 * len(users) and set(expected["user_id"]) == set(users)
    for column in ("user_id", "rank", "movie_id", "title", "promoted"):
        assert got[column].tolist() == expected[column].tolist(), column
    assert np.allclose(got["score"], expected["score"]) and np.allclose(got["predicted_rating"], expected["predicted_rating"])
    assert not set(got["movie_id"]) & {1, 2} and got.loc[got["rank"] == 2, "movie_id"].eq(3).any()

