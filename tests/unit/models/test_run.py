"""When train_evaluate resumes: only under the registration that trained the version."""

from movielens_recs.contracts import TrainEvaluateJob
from movielens_recs.lake.filesystem import write_json
from movielens_recs.models.run import already_trained
from movielens_recs.models.store import ModelLayout


def job(uri: str, registration: str, model_id: str = "m1") -> TrainEvaluateJob:
    return TrainEvaluateJob(ratings="file:///r", dataset="ml-x", snapshot_id="s", model_id=model_id, model_uri=uri,
                            params={}, registration=registration)


def test_a_version_is_resumed_only_under_the_registration_that_trained_it(tmp_path):
    uri = f"file://{tmp_path}/m1"
    assert already_trained(job(uri, "a")) is None, "nothing trained yet"
    write_json(ModelLayout(uri).metadata, {"model_id": "m1", "registration": "a", "trained_at": "t"})
    assert already_trained(job(uri, "a"))["trained_at"] == "t"
    assert already_trained(job(uri, "b")) is None, "a rerun registers anew and trains again"
    assert already_trained(job(uri, "")) is None, "no registration given: always train"
    assert already_trained(job(uri, "a", model_id="m2")) is None


def test_a_version_trained_before_registrations_were_recorded_is_trained_again(tmp_path):
    uri = f"file://{tmp_path}/m1"
    write_json(ModelLayout(uri).metadata, {"model_id": "m1", "trained_at": "t"})
    assert already_trained(job(uri, "a")) is None
