"""The daily DAG, run by the real Airflow (`airflow dags test`) on the local stack, downloading
from a local HTTP server that stands in for GroupLens."""

import json
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from psycopg.rows import dict_row

from movielens_recs.config import Settings
from mlrecs_devkit.stack import BUCKET, PG_READER
from movielens_recs.publish import s3 as s3_publish
from movielens_recs.publish.sinks import Namespace

from tests.api_client import get
from tests.conftest import write_md5
from tests.movielens_fixtures import GOOD_RATINGS, csv_files, zip_archive


def run_dag(env, dataset, logical_date, **params):
    proc = subprocess.run(
        [sys.executable, "-m", "mlrecs_devkit.devrun", "--json", "--dataset", dataset, "--date", logical_date,
         *[f"--param={k}={json.dumps(v)}" for k, v in params.items()]],
        env=env, capture_output=True, text=True, timeout=1200,
    )
    assert proc.stdout.strip(), proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _drop_schemas(stack, schema):
    with psycopg.connect(stack.postgres_dsn(), autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema}, {Namespace('ml-latest-small', schema).pg_schema} CASCADE")


def _dag_env(stack_env, folder, schema):
    """The stack's connections, with a lake, downloads, reports, registry, published tables (the
    schema) and S3 prefix of the caller's own, so that `make run`'s champion plays no part."""
    return {
        **stack_env,
        "MLRECS_LAKE_URI": str(folder / "lake"),
        "MLRECS_DOWNLOAD_DIR": str(folder / "downloads"),
        "MLRECS_DATA_DOCS_DIR": str(folder / "data_docs"),
        "MLRECS_DB_SCHEMA": schema,
        "MLRECS_S3_PREFIX": f"e2e/{schema}",
    }


def registry_rows(stack, schema):
    with psycopg.connect(stack.postgres_dsn(), autocommit=True) as conn:
        conn.execute(f"SET search_path TO {schema}")
        with conn.cursor(row_factory=dict_row) as cur:
            return {r["model_id"]: r for r in cur.execute("SELECT * FROM model_registry").fetchall()}


@pytest.fixture
def dag_env(stack, stack_env, tmp_path):
    schema = f"e2e_{uuid.uuid4().hex[:10]}"
    yield _dag_env(stack_env, tmp_path, schema)
    _drop_schemas(stack, schema)


@dataclass(frozen=True)
class FirstRun:
    env: dict
    folder: Path
    run: dict

    @property
    def schema(self) -> str:
        return self.env["MLRECS_DB_SCHEMA"]

    @property
    def lake(self) -> Path:
        return self.folder / "lake"


@pytest.fixture(scope="module")
def first_run(stack, stack_env, movielens_server, tmp_path_factory):
    """ml-latest-small's first run, dated 2026-11-01, with nothing before it. Each scenario below
    continues from it, so its download, validation, training and publishing run once for all of
    them (each DAG run costs a minute or more of CI). The tests check it; the fixture only runs it."""
    folder = tmp_path_factory.mktemp("daily")
    schema = f"e2e_{uuid.uuid4().hex[:10]}"
    env = {**_dag_env(stack_env, folder, schema), "MLRECS_BASE_URL": movielens_server.url}
    try:
        yield FirstRun(env, folder, run_dag(env, "ml-latest-small", "2026-11-01"))
    finally:
        _drop_schemas(stack, schema)


def published_in_postgres(stack, schema):
    """What readers of ml-latest-small's namespace see, as the apps' reader role."""
    with psycopg.connect(stack.postgres_dsn(role=PG_READER), autocommit=True) as conn:
        conn.execute(f"SET search_path TO {Namespace('ml-latest-small', schema).pg_schema}")
        return pa.table(pd.DataFrame(conn.execute(
            "SELECT user_id, rank, movie_id, title, score, predicted_rating, model_version FROM recommendations "
            "ORDER BY user_id, rank"
        ).fetchall(), columns=["user_id", "rank", "movie_id", "title", "score", "predicted_rating", "model_version"]))


def published_in_s3(stack, prefix):
    """What readers of ml-latest-small's namespace see, as the apps' reader identity."""
    client, prefix = stack.s3_client("reader"), Namespace("ml-latest-small", "", prefix).s3_prefix
    manifest = s3_publish.current_manifest(client, BUCKET, prefix)
    recs, _ = s3_publish.read(client, BUCKET, manifest)  # checks every file's SHA-256
    return manifest, recs


def _states(run):
    return {task: ti["state"] for task, ti in run["tasks"].items()}


PUBLISHING = ("recommend", "publish")


def test_ml_latest_small_end_to_end_then_bad_models_change_nothing(stack, first_run, tmp_path):
    env, run, lake, schema = first_run.env, first_run.run, first_run.lake, first_run.schema
    assert run["state"] == "success", open(run["log"]).read()[-5000:]
    assert _states(run) == {
        "download": "success", "snapshot": "success", "validation_needed": "success",
        "validate": "success", "snapshot_ready": "success", "tune": "skipped", "prepare_model": "success",
        "train_evaluate": "success", "gate": "success",
        "recommend": "success", "publish": "success",
    }
    ready = run["results"]["snapshot_ready"]
    assert ready["snapshot_id"] == "91f91ad0f0846e764ddf79cf44a0cbe1"  # ../shared/data/ml-latest-small.zip.md5
    assert (ready["ratings_rows"], ready["movies_rows"]) == (100_836, 9_742)
    assert pq.read_table(ready["ratings_uri"]).num_rows == 100_836
    assert pq.read_table(ready["movies_uri"]).num_rows == 9_742
    assert ready["validation"]["success"] is True
    assert (lake / "snapshots" / "ml-latest-small" / ready["snapshot_id"] / "_VALIDATED.json").exists()
    assert (first_run.folder / "data_docs" / "index.html").exists()

    # the first model has no champion to beat: the absolute rules promote it, every one of them on,
    # so its rating model beat the biases and its ranking model beat popularity in the run's figures
    first = run["results"]["prepare_model"]["model_id"]
    rows = registry_rows(stack, schema)
    assert rows[first]["status"] == "champion"
    metrics = rows[first]["metrics"]
    assert metrics["fair"] is None
    assert 0.8 < metrics["model"]["rmse"] < metrics["bias"]["rmse"] < 0.9
    assert metrics["model"]["ndcg_at_k"] >= 1.2 * metrics["popularity"]["ndcg_at_k"] > 0
    assert metrics["model"]["ndcg_at_k_liked"] > metrics["popularity"]["ndcg_at_k_liked"] > 0
    rules = {r["name"]: r for r in rows[first]["decision"]["rules"]}
    assert set(rules) == {"rmse_ceiling", "beats_bias_baseline", "beats_popularity", "catalog_coverage",
                          "no_rating_regression", "no_ranking_regression"}
    assert all(r["passed"] for r in rules.values())
    assert (lake / "models" / "ml-latest-small" / first / "metrics.json").exists()

    # every user's top 10, readable from PostgreSQL and from S3, the same in both
    model_users = pq.read_table(str(lake / "models" / "ml-latest-small" / first / "split" / "train"),
                                columns=["user_id"]).column("user_id").unique()
    from_pg = published_in_postgres(stack, schema)
    manifest, from_s3 = published_in_s3(stack, env["MLRECS_S3_PREFIX"])
    assert set(from_pg.column("model_version").to_pylist()) == {first} == {manifest["model_version"]}
    assert from_pg.num_rows == from_s3.num_rows == manifest["row_count"] == 10 * len(model_users)
    assert set(from_pg.column("user_id").to_pylist()) == set(model_users.to_pylist())
    pg_rows, s3_rows = from_pg.to_pandas(), from_s3.to_pandas()
    for column in ("user_id", "rank", "movie_id", "title"):
        assert pg_rows[column].tolist() == s3_rows[column].tolist(), column
    assert np.allclose(pg_rows["score"], s3_rows["score"], atol=1e-5)  # real vs float32
    assert np.allclose(pg_rows["predicted_rating"], s3_rows["predicted_rating"], atol=1e-5)
    assert pg_rows["predicted_rating"].between(0.5, 5.0).all()
    assert pg_rows.groupby("user_id")["rank"].apply(list).map(lambda r: r == list(range(1, 11))).all()
    published = run["results"]["publish"]
    assert (published["champion"], published["retired"]) == (first, None)
    assert [p["sink"] for p in published["published"]] == ["postgres", "s3"]
    # consumers hear of it: one asset event per sink, with the version and its size
    assert sorted((e["asset"], e["extra"]["model_version"], e["extra"]["rows"]) for e in run["asset_events"]) == [
        ("mlrecs/ml-latest-small/postgres", first, from_pg.num_rows), ("mlrecs/ml-latest-small/s3", first, from_pg.num_rows)]
    assert {e["uri"] for e in run["asset_events"]} == {
        f"s3://{BUCKET}/{env['MLRECS_S3_PREFIX']}/ml-latest-small/recommendations/_manifest.json",
        f"postgres://127.0.0.1:{stack.config()['postgres_port']}/mlrecs/{schema}_ml_latest_small/recommendations"}

    # next day, same archive, both models made worse by their params (a rank-1 ranking model is
    # little more than popularity): nothing is downloaded, parsed or validated again; the version
    # is trained, measured against the champion, and turned down
    again = run_dag(env, "ml-latest-small", "2026-11-02", max_iter=1, reg_param=1.0, ranking_rank=1,
                    ranking_max_iter=1)
    assert again["state"] == "success", open(again["log"]).read()[-5000:]
    assert _states(again)["validate"] == "skipped"
    assert again["results"]["download"]["reused_snapshot"] is True
    assert again["results"]["snapshot_ready"]["data_dir"] == ready["data_dir"]
    second = again["results"]["prepare_model"]["model_id"]
    rows = registry_rows(stack, schema)
    assert rows[second]["status"] == "rejected"
    assert rows[first]["status"] == "champion", "a rejected model must leave the champion alone"
    failed = {r["name"] for r in rows[second]["decision"]["rules"] if not r["passed"]}
    # the biases alone keep RMSE under the ceiling; everything else about this version is worse
    assert {"beats_bias_baseline", "beats_popularity", "catalog_coverage", "no_rating_regression",
            "no_ranking_regression"} <= failed
    fair = rows[second]["metrics"]["fair"]
    # the same salt holds out the same ratings: none of the candidate's held-out ones were the champion's
    assert fair["champion_id"] == first and fair["ratings"] == fair["test_ratings"] > 15_000
    log = open(again["log"]).read()
    assert f"model {second} rejected by the gate; champion unchanged" in log  # the notifier hook
    # ... and nothing was recomputed or published: readers still get the first model's set
    assert all(_states(again)[task] == "skipped" for task in PUBLISHING) and again["asset_events"] == []
    assert published_in_postgres(stack, schema).equals(from_pg)
    assert published_in_s3(stack, env["MLRECS_S3_PREFIX"])[0] == manifest


    # the leakage case, through the whole DAG: another split salt, so the champion trained on about
    # 80% of this version's held-out ratings. Compared only on the rest, a version as good as the
    # champion passes the gate. Its recommendations then break their suite (here a suite made
    # stricter than the output can meet): rejected, nothing published, champion kept
    strict = tmp_path / "strict_expectations"
    shutil.copytree(Settings.from_env().expectations_dir, strict)
    suite = json.loads((strict / "recommendations.json").read_text())
    for expectation in suite["expectations"]:
        if expectation["type"] == "expect_column_values_to_be_between" and expectation["kwargs"]["column"] == "rank":
            expectation["kwargs"]["max_value"] = 5
    (strict / "recommendations.json").write_text(json.dumps(suite))
    third = run_dag({**env, "MLRECS_EXPECTATIONS_DIR": str(strict)}, "ml-latest-small", "2026-11-03",
                    split_salt="another")
    assert third["state"] == "failed"
    states = _states(third)
    assert (states["gate"], states["recommend"]) == ("success", "failed")
    assert states["publish"] == "upstream_failed"
    bad = third["results"]["prepare_model"]["model_id"]
    rows = registry_rows(stack, schema)
    fair = rows[bad]["metrics"]["fair"]
    assert fair["champion_id"] == first and 0 < fair["ratings"] < 0.3 * fair["test_ratings"]
    gate_rules = {r["name"]: r["passed"] for r in rows[bad]["decision"]["rules"]}
    assert gate_rules["no_rating_regression"] and gate_rules["no_ranking_regression"]
    assert rows[bad]["status"] == "rejected" and rows[first]["status"] == "champion"
    rule = {r["name"]: r for r in rows[bad]["decision"]["rules"]}["recommendations_valid"]
    assert not rule["passed"] and "expect_column_values_to_be_between(rank)" in rule["detail"]
    log = open(third["log"]).read()
    assert f"recommendations of {bad} failed validation; model rejected, nothing published" in log
    assert published_in_postgres(stack, schema).equals(from_pg)
    assert published_in_s3(stack, env["MLRECS_S3_PREFIX"])[0] == manifest

    # between retrains: a new user rates ten horror films through the API; the fold-in DAG folds
    # them into the champion, and the API serves that user a list of their own, mostly horror
    fold_in_a_new_user(stack, env, first, ready, lake)


def test_validation_failure_stops_the_run_and_names_the_problem(dag_env, dataset_server, tmp_path):
    write_md5(zip_archive(dataset_server.directory / "ml-bad.zip", "ml-bad", csv_files(GOOD_RATINGS + [(4, 2, 7.0, 964982800)])))
    env = {**dag_env, "MLRECS_BASE_URL": dataset_server.url}
    run = run_dag(env, "ml-bad", "2026-11-03")
    assert run["state"] == "failed"
    states = _states(run)
    assert states["validate"] == "failed"
    assert states["snapshot_ready"] == "upstream_failed"
    log = open(run["log"]).read()
    assert "expect_column_values_to_be_in_set(rating) failed: 1 of 6 rows broke it" in log
    # the task's own error (what the UI shows) names it too, and the notifier was called
    assert "AirflowFailException: snapshot ml-bad/" in log and "failed validation:" in log
    assert "movielens pipeline failure: dag=movielens_recommendations task=validate" in log
    assert not list((tmp_path / "lake").rglob("_VALIDATED.json"))


def test_each_date_trains_on_its_own_past_reruns_change_nothing_and_older_dates_never_win(stack, first_run):
    """ml-latest-small's ratings run to 2018-09-24. After the module's first run (its champion,
    dated 2026-11-01), a rerun of that date trains nothing, and a run dated 2018-06-01 (what a
    backfill does) sees only what was rated before its date and leaves the champion and the
    published set alone."""
    env, schema = first_run.env, first_run.schema
    assert first_run.run["state"] == "success", open(first_run.run["log"]).read()[-5000:]
    champion = first_run.run["results"]["prepare_model"]["model_id"]
    served = published_in_postgres(stack, schema)
    manifest, _ = published_in_s3(stack, env["MLRECS_S3_PREFIX"])
    before = registry_rows(stack, schema)
    assert before[champion]["status"] == "champion"

    rerun = run_dag(env, "ml-latest-small", "2026-11-01")
    assert rerun["state"] == "success", open(rerun["log"]).read()[-5000:]
    assert _states(rerun)["prepare_model"] == "skipped" and _states(rerun)["train_evaluate"] == "skipped"
    assert "already champion; it will not be trained over" in open(rerun["log"]).read()

    june = run_dag(env, "ml-latest-small", "2018-06-01")
    assert june["state"] == "success", open(june["log"]).read()[-5000:]
    older = june["results"]["prepare_model"]["model_id"]
    assert june["results"]["prepare_model"]["cutoff"].startswith("2018-06-01")
    assert _states(june)["gate"] == "success" and all(_states(june)[t] == "skipped" for t in PUBLISHING)

    rows = registry_rows(stack, schema)
    assert set(rows) == set(before) | {older} and older not in before, "one row per date and params, never a duplicate"
    assert (rows[champion]["status"], rows[older]["status"]) == ("champion", "historical")
    assert rows[older]["cutoff"] < rows[champion]["cutoff"]
    assert 0 < rows[older]["training_rows"] < rows[champion]["training_rows"] < 100_836
    assert rows[champion]["snapshot_id"] == rows[older]["snapshot_id"]
    failed = [r["name"] for r in rows[older]["decision"]["rules"] if not r["passed"]]
    assert "not_older_than_champion" in failed
    assert published_in_postgres(stack, schema).equals(served)
    assert published_in_s3(stack, env["MLRECS_S3_PREFIX"])[0] == manifest


def fold_in_a_new_user(stack, env, champion, ready, lake):
    movies = pq.read_table(ready["movies_uri"]).to_pandas()
    train = pq.read_table(str(lake / "models" / "ml-latest-small" / champion / "split" / "train"),
                          columns=["movie_id"]).to_pandas()
    genres = movies.set_index("movie_id")["genres"].str.split("|")
    only_horror = movies.loc[movies["genres"] == "Horror", "movie_id"]
    rated = train[train["movie_id"].isin(only_horror)]["movie_id"].value_counts().index[:10].tolist()
    user = 900_001
    stack.stop_api()
    stack.start_api({"MLRECS_DB_SCHEMA": env["MLRECS_DB_SCHEMA"], "MLRECS_SERVE_DATASETS": "ml-latest-small"})
    try:
        path = f"/v1/ml-latest-small/users/{user}/recommendations"
        before = get(stack, path)[1]
        assert before["cold_start"] and before["fold_in_seq"] is None
        # half the ratings folded in by the task itself, the rest by its Spark job (forced by a
        # threshold of 0 users): the second fold-in recomputes the user from all ten
        for half, spark_users in ((rated[:5], "20000"), (rated[5:], "0")):
            for movie in half:
                status, body, _ = get(stack, f"/v1/ml-latest-small/users/{user}/ratings",
                                      body={"movie_id": int(movie), "rating": 5.0, "idempotency_key": f"e2e-{movie}"})
                assert status == 201, body
            proc = subprocess.run([sys.executable, "-m", "mlrecs_devkit.devrun", "--json", "--fold-in"],
                                  env={**env, "MLRECS_FOLD_IN_SPARK_USERS": spark_users}, capture_output=True,
                                  text=True, timeout=600)
            run = json.loads(proc.stdout.strip().splitlines()[-1])
            assert run["state"] == "success", open(run["log"]).read()[-5000:]
            [result] = run["results"]["fold_in"]
            assert (result["dataset"], result["model_version"], result["status"], result["events"], result["users"],
                    result["folded_users"]) == ("ml-latest-small", champion, "folded", 5, 1, 1)
        assert result["sequence"] == 2
        assert "on Spark (more than MLRECS_FOLD_IN_SPARK_USERS=0)" in open(run["log"]).read()
        status, after, headers = get(stack, path)
        assert status == 200 and not after["cold_start"]
        assert (after["model_version"], after["fold_in_seq"], headers["etag"]) == (champion, 2, f'"{champion}+2"')
        listed = [item["movie_id"] for item in after["items"]]
        assert len(listed) == 10 and not set(listed) & set(rated)
        # a tenth of the catalog is horror, and none of the cold-start list
        horror = sum("Horror" in genres[m] for m in listed)
        assert horror >= 6, [(m, genres[m]) for m in listed]
        assert sum("Horror" in genres[i["movie_id"]] for i in before["items"]) <= 1
    finally:
        stack.stop_api()
