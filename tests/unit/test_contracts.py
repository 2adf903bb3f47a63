"""Each Spark job's argument contract: what a task builds from its upstream XCom is what the job
reads back, with types kept."""

from datetime import datetime, timezone
from pathlib import Path

import pytest

from movielens_recs.config import Settings
from movielens_recs.contracts import RecommendJob, TrainEvaluateJob, TuneJob, ValidateJob, cutoff_for

SETTINGS = Settings.from_env({"MLRECS_STATE_DIR": "/state", "MLRECS_PROJECT_ROOT": "/repo"})
PREPARED = {"model_id": "ml-x-20261201-ab", "model_uri": "file:///lake/models/ml-x/ml-x-20261201-ab",
            "dataset": "ml-x", "snapshot_id": "s1", "ratings_spark_uri": "file:///lake/r",
            "movies_spark_uri": "file:///lake/m", "cutoff": "2026-12-01T00:00:00+00:00",
            "params": {"rank": 8, "reg_param": 0.05, "nonnegative": False}, "k": 20, "champion_id": "c",
            "champion_uri": "file:///lake/models/ml-x/c", "checkpoint_dir": "/ckpt", "registration": "r1",
            "excluded_movies": [3, 5], "promotion": {"movies": [7], "position": 2, "max_per_list": 1}}


@pytest.mark.parametrize("contract", [TrainEvaluateJob, RecommendJob])
def test_what_a_task_builds_from_prepare_model_the_job_reads_back(contract):
    job = contract.from_upstream(PREPARED, {"params": {"top_n": 15}}, SETTINGS)
    assert contract.from_argv(job.to_argv()) == job


def test_types_survive_the_command_line():
    job = RecommendJob.from_upstream(PREPARED, {"params": {"top_n": 15}}, SETTINGS)
    back = RecommendJob.from_argv(job.to_argv())
    assert (back.top_n, back.exclude_movies, back.promote) == (15, (3, 5), PREPARED["promotion"])
    assert back.expectations_dir == "/repo/expectations" and back.output_uri == ""
    model = TrainEvaluateJob.from_argv(TrainEvaluateJob.from_upstream(PREPARED, {}, SETTINGS).to_argv())
    assert model.params == PREPARED["params"] and model.cutoff == PREPARED["cutoff"]
    assert (model.k, model.registration, model.champion_model_id) == (20, "r1", "c")


def test_text_goes_as_it_is_and_other_values_as_json():
    argv = TrainEvaluateJob(ratings="r", dataset="d", snapshot_id="s", model_id="m 1", model_uri="file:///x",
                            params={"rank": 5}, k=5).to_argv()
    assert argv == ["--ratings=r", "--dataset=d", "--snapshot-id=s", "--model-id=m 1", "--model-uri=file:///x",
                    '--params={"rank": 5}', "--registration=", "--cutoff=", "--checkpoint-dir=", "--k=5",
                    "--champion-model-id=", "--champion-model-uri="]


def test_a_field_left_at_none_is_left_out_and_takes_its_default():
    snap = {"dataset": "ml-x", "snapshot_id": "s", "data_dir": "/d", "ratings_spark_uri": "r",
            "movies_spark_uri": "m", "report_uri": "/r.json"}
    job = ValidateJob.from_upstream(snap, {}, SETTINGS)
    assert job.suites_fingerprint is None and not any(a.startswith("--suites-fingerprint") for a in job.to_argv())
    assert ValidateJob.from_argv(job.to_argv()) == job


def test_a_missing_required_argument_is_refused_by_name(capsys):
    job = TrainEvaluateJob(ratings="r", dataset="d", snapshot_id="s", model_id="m", model_uri="u", params={})
    argv = [a for a in job.to_argv() if not a.startswith("--model-uri")]
    with pytest.raises(SystemExit):
        TrainEvaluateJob.from_argv(argv)
    assert "the following arguments are required: --model-uri" in capsys.readouterr().err


def test_tune_takes_the_runs_params_and_its_cutoff():
    context = {"params": {"tune": "quick", "k": 5, "rank": 12}, "run_id": "manual__2026-12-01T00:00:00+00:00",
               "data_interval_end": datetime(2026, 12, 1, tzinfo=timezone.utc)}
    job = TuneJob.from_upstream({"dataset": "ml-x", "ratings_spark_uri": "file:///r"}, context, SETTINGS)
    assert (job.mode, job.k, job.params["rank"], job.cutoff) == ("quick", 5, 12, "2026-12-01T00:00:00+00:00")
    assert job.output_uri == str(Path("/state/lake/models/ml-x/_tuning/manual__2026-12-01T00_00_00_00_00/tuning.json"))
    assert TuneJob.from_argv(job.to_argv()) == job


def test_the_cutoff_is_the_end_of_the_data_interval_else_the_logical_date_else_run_after():
    end, logical, after = (datetime(2026, 12, d, tzinfo=timezone.utc) for d in (3, 2, 1))
    assert cutoff_for({"data_interval_end": end, "logical_date": logical, "run_after": after}) == end
    assert cutoff_for({"data_interval_end": None, "logical_date": None, "run_after": after}) == after
    with pytest.raises(ValueError, match="no data interval"):
        cutoff_for({})
