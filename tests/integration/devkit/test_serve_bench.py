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
