from mlrecs_devkit.benchmark.topn_bench import _in_turns


def test_the_variants_take_turns_so_that_none_runs_only_on_a_jvm_another_warmed():
    calls = []
    times = _in_turns(3, {"job": lambda: calls.append("job"), "spark": lambda: calls.append("spark")})
    assert calls == ["job", "spark"] * 3
    assert {name: len(runs) for name, runs in times.items()} == {"job": 3, "spark": 3}
    assert all(t >= 0 for runs in times.values() for t in runs)
