"""Train and evaluate, submitted to the standalone cluster through the DAG's own operator."""

import json

import numpy as np
import pyarrow as pa
import pytest

from movielens_recs.datasets.readers import MOVIES_SCHEMA, RATINGS_SCHEMA
from movielens_recs.lake.filesystem import resolve
from movielens_recs.lake.snapshot import SnapshotStore
from movielens_recs.models.params import AlsParams


def low_rank_ratings(users=120, items=200, per_user=40, seed=7):
    """Ratings drawn from a rank-3 taste model with noise, rounded to half stars."""
    rng = np.random.default_rng(seed)
    u, v = rng.normal(size=(users, 3)), rng.normal(size=(items, 3))
    popularity = rng.zipf(1.6, size=items).astype(float)
    rows = []
    for user in range(users):
        chosen = rng.choice(items, size=per_user, replace=False, p=popularity / popularity.sum())
        for item in chosen:
            raw = 3.2 + 0.8 * u[user] @ v[item] + rng.normal(scale=0.3)
            rows.append((user + 1, int(item) + 1, float(np.clip(np.round(raw * 2) / 2, 0.5, 5.0)),
                         978300760 + 3600 * len(rows)))
    return rows


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    lake = tmp_path_factory.mktemp("lake")
    rows = low_rank_ratings()
    batch = pa.RecordBatch.from_arrays(
        [pa.array([r[0] for r in rows], pa.int32()), pa.array([r[1] for r in rows], pa.int32()),
         pa.array([r[2] for r in rows], pa.float32()),
         pa.array([r[3] for r in rows], pa.int64()).cast(pa.timestamp("s", tz="UTC")).cast(pa.timestamp("ms", tz="UTC"))],
        schema=RATINGS_SCHEMA,
    )
    movies = pa.table({"movie_id": pa.array(range(1, 201), pa.int32()), "title": [f"m{i}" for i in range(1, 201)],
                       "genres": ["Drama"] * 200}, schema=MOVIES_SCHEMA)
    return SnapshotStore(str(lake)).write("ml-synthetic", "s1", [batch], movies, source={}), lake


@pytest.fixture
def airflow_env(stack_env, monkeypatch):
    for key, value in stack_env.items():
        monkeypatch.setenv(key, value)


def submit(task_id, job, args):
    from movielens_recs.orchestration.spark import ProjectSparkSubmitOperator

    op = ProjectSparkSubmitOperator(task_id=task_id, job=job, application_args=args)
    op.execute(context={})


def read(uri):
    fs, path = resolve(uri)
    with fs.open_input_stream(path) as fh:
        return json.loads(fh.read())


def test_train_then_evaluate_through_the_operator(stack, airflow_env, snapshot):
    manifest, lake = snapshot
    model_uri = f"file://{lake}/models/ml-synthetic/m1"
    params = AlsParams(rank=3, max_iter=10, reg_param=0.05, blocks=2)
    submit("train", "train_als", [
        "--ratings", manifest["ratings_spark_uri"], "--dataset", "ml-synthetic", "--snapshot-id", "s1",
        "--model-id", "m1", "--model-uri", model_uri, "--checkpoint-dir", f"{lake}/checkpoints",
        *[a for k, v in params.as_dict().items() for a in ("--" + k.replace("_", "-"), str(v))],
    ])
    meta = read(f"{model_uri}/metadata.json")
    assert meta["params"] == params.as_dict()
    assert meta["rows"]["ratings"] == manifest["ratings_rows"]
    assert meta["rows"]["train"] + meta["rows"]["test"] == manifest["ratings_rows"]
    assert 0.15 < meta["rows"]["test"] / meta["rows"]["ratings"] < 0.25
    assert meta["spark_version"].startswith("4.") and meta["fit_seconds"] > 0
    assert (lake / "models/ml-synthetic/m1/als/metadata").is_dir()

    submit("evaluate", "evaluate_als", ["--model-id", "m1", "--model-uri", model_uri, "--k", "10"])
    metrics = read(f"{model_uri}/metrics.json")
    model, baseline = metrics["model"], metrics["baseline"]
    assert metrics["k"] == 10 and metrics["champion_on_test"] is None
    # a rank-3 taste model with little noise: ALS must recover it far better than chance
    assert model["rmse"] < 0.9 and model["mae"] < model["rmse"]
    for key in ("precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k", "coverage"):
        assert 0 <= model[key] <= 1 and 0 <= baseline[key] <= 1
    assert model["users"] == baseline["users"] > 100
    assert baseline["coverage"] < model["coverage"], "popularity recommends the same few items to all"

    # the same model, given as its own champion, must measure the same on the same test set
    submit("evaluate", "evaluate_als", ["--model-id", "m1", "--model-uri", model_uri, "--k", "10",
                                        "--champion-model-id", "m1", "--champion-model-uri", model_uri])
    again = read(f"{model_uri}/metrics.json")
    assert again["champion_on_test"]["rmse"] == pytest.approx(model["rmse"], rel=1e-6)
