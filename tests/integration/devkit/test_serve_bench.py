"""`make bench-serve`, shortened: wrk against the real API while a publish and a rollback switch
the set, and a checker that compares every answer with its version's list."""

from mlrecs_devkit.benchmark import serve_bench


def test_the_load_benchmark_runs_and_sees_both_switches_without_errors_or_mixed_answers(stack):
    result = serve_bench.run(stack, users=2_000, connections=8, seconds=6, workers=1)
    assert result["requests"] > 0 and result["requests_per_second"] > 0
    assert result["errors"] == 0 and result["checker_errors"] == []
    assert result["checked"] > 0 and result["mixed"] == 0
    assert set(result["versions_seen"]) == {"bench-1", "bench-2"}, "the checker saw the publish and the rollback"
    assert [e["event"] for e in result["switches"]] == ["publish bench-2", "rollback to bench-1"]
    assert 0 < result["latency_ms"]["p50"] <= result["latency_ms"]["p99"]


def test_an_api_that_cannot_start_leaves_no_schema_behind(stack, monkeypatch):
    """The benchmark publishes its first set before it starts the API; when the API then fails to
    start (its port taken, say), the schema it made is dropped all the same."""
    import psycopg
    import pytest

    from mlrecs_devkit.stack import StackError

    def cannot_start(*args, **kwargs):
        raise StackError("recommendations API did not become ready within 60s")

    monkeypatch.setattr(stack, "start_api", cannot_start)
    with pytest.raises(StackError):
        serve_bench.run(stack, users=100, connections=1, seconds=1, workers=1)
    with psycopg.connect(stack.postgres_dsn(), autocommit=True) as conn:
        assert conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'bench_serve%'").fetchall() == []
