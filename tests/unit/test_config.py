"""Settings from MLRECS_* variables: the publishing knobs."""

import pytest

from movielens_recs.config import Settings, parse_sinks


def test_both_sinks_by_default_and_each_alone():
    assert Settings.from_env({}).publish_sinks == ("postgres", "s3")
    assert Settings.from_env({"MLRECS_PUBLISH_SINKS": "s3"}).publish_sinks == ("s3",)
    assert parse_sinks(["Postgres", "postgres"]) == ("postgres",)


@pytest.mark.parametrize("value", ["", "kafka", "postgres,redis", []])
def test_unknown_or_empty_sinks_are_refused(value):
    with pytest.raises(ValueError, match="publish sinks must be some of postgres, s3"):
        parse_sinks(value)


def test_publishing_settings():
    settings = Settings.from_env({"MLRECS_TOP_N": "20", "MLRECS_PUBLISH_KEEP": "5", "MLRECS_S3_BUCKET": "recs",
                                  "MLRECS_S3_PREFIX": "/prod/"})
    assert (settings.top_n, settings.publish_keep, settings.s3_bucket, settings.s3_prefix) == (20, 5, "recs", "prod")
    with pytest.raises(ValueError, match="MLRECS_PUBLISH_KEEP must be an integer"):
        Settings.from_env({"MLRECS_PUBLISH_KEEP": "three"})
