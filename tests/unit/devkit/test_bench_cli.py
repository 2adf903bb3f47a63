"""Training time against ratings count, gathered over the benchmark's results folder."""

import json

from mlrecs_devkit.bench_cli import format_scaling, scaling


def _result(folder, name, ratings, train, dag=100.0, stage="train_evaluate"):
    (folder / f"{name}.json").write_text(json.dumps({
        "name": name, "dataset": name.split("-2")[0], "dag_seconds": dag,
        "stages": {stage: train}, "quality": {"training_rows": ratings},
    }))


def test_every_result_counts_smallest_set_first_with_seconds_per_million(tmp_path):
    _result(tmp_path, "synthetic-10m-20261121", 8_000_000, 200.0)
    _result(tmp_path, "synthetic-1m-20261121", 800_000, 40.0, stage="train")  # from before train_evaluate
    (tmp_path / "older-format.json").write_text(json.dumps({"name": "old", "stages": {"train": 9}, "quality": {}}))
    rows = scaling(tmp_path)
    assert [r["ratings"] for r in rows] == [800_000, 8_000_000]
    assert [r["train_seconds_per_million"] for r in rows] == [50.0, 25.0]
    table = format_scaling(rows)
    assert "synthetic-1m-20261121" in table and "8,000,000" in table and "25.00" in table
