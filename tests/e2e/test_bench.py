"""The benchmark command on the local stack: a real DAG run, then the side-by-side figures."""

import json
import subprocess
import sys

import psycopg


def test_bench_writes_its_figures_and_leaves_nothing_published(stack, stack_env, movielens_server, tmp_path):
    env = {**stack_env, "MLRECS_BASE_URL": movielens_server.url}
    proc = subprocess.run(
        [sys.executable, "-m", "movielens_recs.orchestration.bench_cli", "--dataset", "ml-latest-small",
         "--name", "test-run", "--results-dir", str(tmp_path), "--copy-rows", "50000"],
        env=env, capture_output=True, text=True, timeout=1500,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((tmp_path / "test-run.json").read_text())

    # every stage ran, on a fresh lake
    assert all(result["stages"][stage] > 0 for stage in ("download", "validate", "train", "recommend", "publish"))
    assert result["dag_seconds"] >= result["stages"]["train"]
    assert 0.8 < result["quality"]["rmse"] < 0.9 and result["quality"]["status"] == "champion"
    topn = result["topn"]
    assert topn["users"] == 610 and topn["top_n"] == 10
    for variant in ("recommend_job", "recommend_for_all_users", "machine_limit"):
        assert topn[variant]["users_per_second"] > 0
    assert topn["speedup_vs_recommend_for_all_users"] == round(
        topn["recommend_for_all_users"]["seconds"] / topn["recommend_job"]["seconds"], 2)
    scaled = result["postgres"]["scaled"]
    assert scaled["rows"] == 50_000 and scaled["copy_rows_per_second"] > scaled["row_by_row_rows_per_second"] > 0
    assert scaled["reader_queries"] > 0 and scaled["reader_inconsistent_reads"] == 0
    assert scaled["reader_queries_during_switch"] >= 1 and scaled["reader_ms_max_during_switch"] > 0
    assert result["postgres"]["run_output"]["rows"] == 6_100

    assert "recommendForAllUsers" in proc.stdout and "rows/s with COPY" in proc.stdout
    with psycopg.connect(stack.postgres_dsn(), autocommit=True) as conn:
        left = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'bench%'").fetchall()
    assert left == [], "the benchmark's schemas are dropped at the end"
