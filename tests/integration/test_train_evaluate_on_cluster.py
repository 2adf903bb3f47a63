"""Train and evaluate (one Spark application), submitted to the standalone cluster through the
DAG's own operator."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from movielens_recs.contracts import TrainEvaluateJob, TuneJob
from movielens_recs.datasets.readers import MOVIES_SCHEMA, RATINGS_SCHEMA
from movielens_recs.evaluation.breakdown import rmse_by_activity
from movielens_recs.lake.filesystem import resolve
from movielens_recs.lake.snapshot import SnapshotStore
from movielens_recs.models.params import AlsParams


def low_rank_ratings(users=300, items=200, per_user=40, seed=7):
    """Ratings drawn from a rank-3 taste model with noise, rounded to half stars; users pick the
    movies they rate by popularity tilted by their taste, so tastes predict what they rate next."""
    rng = np.random.default_rng(seed)
    u, v = rng.normal(size=(users, 3)), rng.normal(size=(items, 3))
    popularity = rng.zipf(1.6, size=items).astype(float)
    rows = []
    for user in range(users):
        weight = popularity * np.exp(u[user] @ v.T)
        chosen = rng.choice(items, size=per_user, replace=False, p=weight / weight.sum())
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


def submit(task_id, job):
    """`job` (a contracts.JobContract) submitted through the DAG's operator, as its task would."""
    from movielens_recs.orchestration.spark import ProjectSparkSubmitOperator

    op = ProjectSparkSubmitOperator(task_id=task_id, job=job.JOB, application_args=job.to_argv())
    op.execute(context={})


def read(uri):
    fs, path = resolve(uri)
    with fs.open_input_stream(path) as fh:
        return json.loads(fh.read())


def train_evaluate(lake, manifest, model_id, params: AlsParams, champion_id="", champion_uri="",
                   registration="") -> tuple[str, dict]:
    """(the version's URI, its metrics.json)"""
    model_uri = f"file://{lake}/models/ml-synthetic/{model_id}"
    submit("train_evaluate", TrainEvaluateJob(
        ratings=manifest["ratings_spark_uri"], dataset="ml-synthetic", snapshot_id="s1", model_id=model_id,
        model_uri=model_uri, params=params.as_dict(), registration=registration,
        checkpoint_dir=f"{lake}/checkpoints", k=10, champion_model_id=champion_id, champion_model_uri=champion_uri))
    return model_uri, read(f"{model_uri}/metrics.json")


def pairs(path) -> pd.DataFrame:
    return pq.read_table(str(path), columns=["user_id", "movie_id", "rating"]).to_pandas()


def predict_by_hand(model_dir: Path, rows: pd.DataFrame) -> np.ndarray:
    """The rating model's prediction from its saved files, without Spark: mu + b_u + b_i + the
    factors' dot product (0 where either has none), as models.training.RatingModel promises."""
    mu = json.loads((model_dir / "bias" / "bias.json").read_text())["global_mean"]
    b_u = pq.read_table(str(model_dir / "bias" / "users")).to_pandas().set_index("user_id")["user_bias"]
    b_i = pq.read_table(str(model_dir / "bias" / "items")).to_pandas().set_index("movie_id")["item_bias"]
    users = pq.read_table(str(model_dir / "als" / "userFactors")).to_pandas().set_index("id")["features"]
    items = pq.read_table(str(model_dir / "als" / "itemFactors")).to_pandas().set_index("id")["features"]
    out = []
    for u, i in zip(rows["user_id"], rows["movie_id"]):
        dot = float(np.dot(users[u], items[i])) if u in users.index and i in items.index else 0.0
        out.append(mu + b_u.get(u, 0.0) + b_i.get(i, 0.0) + dot)
    return np.array(out)


def rmse(actual, predicted) -> float:
    return float(np.sqrt(np.mean((np.asarray(actual) - predicted) ** 2)))


SMALL = dict(rank=3, max_iter=10, reg_param=0.05, blocks=2, ranking_rank=8, ranking_max_iter=10)


@pytest.fixture(scope="module")
def first_model(stack, snapshot):
    """One version, trained once for the module: the first test's subject, the second's champion."""
    manifest, lake = snapshot
    with pytest.MonkeyPatch.context() as patch:
        for key, value in stack.environment().items():
            patch.setenv(key, value)
        return train_evaluate(lake, manifest, "m1", AlsParams(**SMALL), registration="first")


def test_train_then_evaluate_both_models_against_both_baselines(stack, airflow_env, snapshot, first_model):
    manifest, lake = snapshot
    params = AlsParams(**SMALL)
    model_uri, metrics = first_model
    meta = read(f"{model_uri}/metadata.json")
    assert meta["params"] == params.as_dict()
    assert meta["rows"]["ratings"] == manifest["ratings_rows"]
    assert meta["rows"]["train"] + meta["rows"]["test"] == manifest["ratings_rows"]
    assert 0.15 < meta["rows"]["test"] / meta["rows"]["ratings"] < 0.25
    assert meta["spark_version"].startswith("4.") and meta["rating_fit_seconds"] > 0 and meta["ranking_fit_seconds"] > 0
    model_dir = lake / "models/ml-synthetic/m1"
    for part in ("als/metadata", "ranking/metadata", "bias/users", "bias/items"):
        assert (model_dir / part).is_dir(), part

    model, bias, popular = metrics["model"], metrics["bias"], metrics["popularity"]
    assert metrics["k"] == 10 and metrics["fair"] is None
    # every held-out rating is predicted (the biases cover what ALS never saw), and the figure is
    # the one the saved files give by hand
    test = pairs(model_dir / "split" / "test")
    assert model["predicted"] == model["held_out"] == len(test)
    assert model["rmse"] == pytest.approx(rmse(test["rating"], predict_by_hand(model_dir, test)), rel=1e-4)
    # a rank-3 taste model with little noise: the factors must add a lot to the biases
    assert model["rmse"] < 0.9 * bias["rmse"] and model["mae"] < model["rmse"]
    assert metrics["ratios"]["rmse_vs_bias"] == pytest.approx(model["rmse"] / bias["rmse"])
    for key in ("precision_at_k", "recall_at_k", "ndcg_at_k", "ndcg_at_k_liked", "map_at_k", "coverage"):
        assert 0 <= model[key] <= 1 and 0 <= popular[key] <= 1
    assert model["users"] == popular["users"] > 100 and model["users_liked"] == popular["users_liked"] > 0
    assert popular["coverage"] < model["coverage"], "popularity recommends the same few items to all"
    assert_the_report_breaks_the_figures_down(model_dir, test, metrics)


def test_a_retry_under_the_same_registration_evaluates_the_trained_version_without_fitting_it_again(
        stack, airflow_env, snapshot, first_model):
    """What a retry of the DAG's train_evaluate task does after evaluation failed: the version's
    models, split and metadata stay as training wrote them, and its figures come out the same."""
    manifest, lake = snapshot
    model_uri, metrics = first_model
    model_dir = lake / "models/ml-synthetic/m1"
    trained = read(f"{model_uri}/metadata.json")
    files = {p: p.stat().st_mtime_ns for p in model_dir.rglob("*") if p.is_file() and "metrics" not in p.name
             and not p.name.startswith("report")}
    (model_dir / "metrics.json").unlink()
    _, again = train_evaluate(lake, manifest, "m1", AlsParams(**SMALL), registration="first")
    assert read(f"{model_uri}/metadata.json") == trained
    assert {p: p.stat().st_mtime_ns for p in files} == files, "nothing training writes was written again"
    assert again["model"] == pytest.approx(metrics["model"], rel=1e-9)
    assert again["popularity"] == pytest.approx(metrics["popularity"], rel=1e-9)


def assert_the_report_breaks_the_figures_down(model_dir: Path, test: pd.DataFrame, metrics: dict) -> None:
    """report.json's figures from the saved split and models by hand; report.html drawn from them."""
    report = json.loads((model_dir / "report.json").read_text())
    model = metrics["model"]
    train = pairs(model_dir / "split" / "train")
    activity = train.groupby("user_id").size().to_dict()
    test = test.assign(error=(test["rating"] - predict_by_hand(model_dir, test)) ** 2)
    per_user = {u: (g["error"].sum(), len(g)) for u, g in test.groupby("user_id")}
    expected = rmse_by_activity(per_user, activity)
    got = report["rmse_by_activity"]["model"]
    assert [(r["bucket"], r["users"], r["ratings"]) for r in got] == [(r["bucket"], r["users"], r["ratings"])
                                                                       for r in expected]
    assert [r["rmse"] for r in got if r["ratings"]] == pytest.approx(
        [r["rmse"] for r in expected if r["ratings"]], rel=1e-4)
    assert sum(r["ratings"] for r in got) == model["held_out"]
    # the buckets' NDCG, weighted by their users, is the overall figure, for both lists
    for side in ("model", "popularity"):
        rows = [r for r in report["ndcg_by_activity"][side] if r["users"]]
        assert sum(r["users"] for r in rows) == model["users"]
        assert sum(r["users"] * r["ndcg"] for r in rows) / model["users"] == pytest.approx(
            metrics[side]["ndcg_at_k"])
    for side in ("predicted", "actual"):
        assert sum(r["count"] for r in report["ratings"][side]) == len(test)
    assert report["lists"]["model"]["coverage"] == pytest.approx(model["coverage"])
    assert report["lists"]["popularity"]["head_share"] > report["lists"]["model"]["head_share"]
    html = (model_dir / "report.html").read_text()
    assert metrics["model_id"] in html and html.count('src="data:image/svg+xml;base64,') == 5


def test_the_champion_is_judged_only_on_ratings_neither_version_trained_on(stack, airflow_env, snapshot, first_model):
    """The leakage case: a champion trained on another salt's split has trained on most of the
    candidate's held-out ratings. Scored on all of them it looks better than it is; on the fair
    set it does not, a candidate as good as it is promoted, and a worse one is still rejected."""
    from movielens_recs.gate import GateConfig, decide

    manifest, lake = snapshot
    champion_uri, _ = first_model  # split with the default salt
    candidate_uri, metrics = train_evaluate(lake, manifest, "cand", AlsParams(**SMALL, split_salt="b"), "m1",
                                            champion_uri)
    fair = metrics["fair"]

    champion_dir, candidate_dir = lake / "models/ml-synthetic/m1", lake / "models/ml-synthetic/cand"
    held_out = pairs(candidate_dir / "split" / "test")
    learned = held_out.merge(pairs(champion_dir / "split" / "train")[["user_id", "movie_id"]])
    fair_rows = held_out.merge(learned[["user_id", "movie_id"]], how="left", indicator=True)
    fair_rows = fair_rows[fair_rows["_merge"] == "left_only"]
    assert fair["ratings"] == len(fair_rows) and 0 < fair["ratings"] < 0.5 * len(held_out)
    assert fair["test_ratings"] == len(held_out) and fair["users"] == fair_rows["user_id"].nunique()

    # the champion's score on the fair set is what its saved files give there by hand ...
    champion_fair = rmse(fair_rows["rating"], predict_by_hand(champion_dir, fair_rows))
    assert fair["champion"]["rmse"] == pytest.approx(champion_fair, rel=1e-4)
    # ... and clearly worse than on the ratings it learned, which the old comparison counted
    assert rmse(learned["rating"], predict_by_hand(champion_dir, learned)) < 0.9 * champion_fair

    # same params, another split: as good on the fair set, so promoted (tolerances for ~1,000 ratings)
    config = GateConfig.for_dataset("ml-synthetic", champion_tolerance=0.05, ranking_tolerance=0.15,
                                    ndcg_multiple=0.0, coverage_floor=0.0)
    decision = decide(metrics, config)
    assert decision.promote, decision.explain()

    # a version that really is worse (rank-1 models, one iteration) is rejected on the same set
    _, worse_metrics = train_evaluate(lake, manifest, "worse", AlsParams(**{
        **SMALL, "rank": 1, "max_iter": 1, "ranking_rank": 1, "ranking_max_iter": 1}, split_salt="c"), "m1", champion_uri)
    worse = decide(worse_metrics, config)
    failed = {r.name for r in worse.rules if not r.passed}
    assert not worse.promote and {"no_rating_regression", "no_ranking_regression"} <= failed, worse.explain()


def test_the_search_fits_on_a_validation_fold_and_never_reads_the_test_fold(stack, airflow_env, snapshot, first_model):
    manifest, lake = snapshot
    output = lake / "tuning" / "quick.json"
    base = AlsParams(**SMALL)
    submit("tune", TuneJob(ratings=manifest["ratings_spark_uri"], dataset="ml-synthetic", mode="quick",
                           params=base.as_dict(), output_uri=str(output), checkpoint_dir=f"{lake}/checkpoints"))
    result = json.loads(output.read_text())
    assert [t["status"] for t in result["trials"]] == ["done"] * 8
    # the validation fold is carved out of the training fold: together they are the training
    # ratings of the same split (first_model's, same salt), so the held-out 20% played no part
    train_rows = pq.read_table(str(lake / "models/ml-synthetic/m1/split/train")).num_rows
    assert result["rows"]["fit"] + result["rows"]["validation"] == train_rows
    assert 0.15 < result["rows"]["validation"] / train_rows < 0.25
    best = result["best_params"]
    rating = min((t for t in result["trials"] if t["model"] == "rating"), key=lambda t: t["score"])
    ranking = max((t for t in result["trials"] if t["model"] == "ranking"), key=lambda t: t["score"])
    assert {k: best[k] for k in rating["changes"]} == rating["changes"]
    assert {k: best[k] for k in ranking["changes"]} == ranking["changes"]
    assert best["split_salt"] == base.split_salt and best["blocks"] == base.blocks


def test_a_cutoff_before_every_rating_fails_at_once_and_says_why(stack, airflow_env, snapshot):
    """A backfill of a date before the dataset's first rating is bad input, not a flaky cluster:
    the task fails without its retries, naming the snapshot and the cutoff, and writes nothing."""
    from airflow.sdk.exceptions import AirflowFailException

    from movielens_recs.orchestration.spark import ProjectSparkSubmitOperator

    manifest, lake = snapshot  # its ratings start on 2001-01-01
    model_dir = lake / "models/ml-synthetic/too-early"
    prepared = {"ratings_spark_uri": manifest["ratings_spark_uri"], "dataset": "ml-synthetic", "snapshot_id": "s1",
                "model_id": "too-early", "model_uri": f"file://{model_dir}", "params": AlsParams(**SMALL).as_dict(),
                "registration": "r1", "cutoff": "2000-12-31T00:00:00+00:00", "checkpoint_dir": f"{lake}/checkpoints",
                "k": 10, "champion_id": "", "champion_uri": ""}
    op = ProjectSparkSubmitOperator(task_id="train_evaluate", contract=TrainEvaluateJob, upstream=prepared)
    with pytest.raises(AirflowFailException, match=r"train_evaluate: snapshot ml-synthetic/s1 has no ratings to train "
                                                   r"on or none to hold out before the cutoff 2000-12-31T00:00:00"):
        op.execute(context={})
    assert not model_dir.exists()
