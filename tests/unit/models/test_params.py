"""One definition of both models' params, parsed from argv strings, JSON and the DAG's form."""

import pytest

from movielens_recs.models.params import AlsParams


def test_params_validate_and_parse_strings():
    p = AlsParams.from_dict({"rank": "12", "nonnegative": "True", "reg_param": "0.05", "split": "time",
                             "ranking_alpha": "2", "split_salt": 7, "other": 1, "ranking_rank": None})
    assert (p.rank, p.nonnegative, p.reg_param, p.split, p.ranking_alpha, p.split_salt) == \
        (12, True, 0.05, "time", 2.0, "7")
    assert p.ranking_rank == AlsParams().ranking_rank, "None means the default"
    with pytest.raises(ValueError, match="split"):
        AlsParams(split="alphabetical")
    with pytest.raises(ValueError, match="test_fraction"):
        AlsParams(test_fraction=1.5)
    with pytest.raises(ValueError, match="ranking_preference"):
        AlsParams(ranking_preference="stars")
    with pytest.raises(ValueError, match="positive"):
        AlsParams(ranking_rank=0)


def test_the_old_random_split_name_means_the_stable_hash_split():
    assert AlsParams.from_dict({"split": "random"}).split == "hash"


def test_replace_keeps_the_rest_and_validates():
    base = AlsParams(rank=20)
    assert base.replace(ranking_alpha=5.0) == AlsParams(rank=20, ranking_alpha=5.0)
    with pytest.raises(ValueError):
        base.replace(reg_param=-1)


def test_every_field_round_trips_through_strings():
    """The train_evaluate job parses what the DAG renders into argv: every value as a string."""
    p = AlsParams(rank=7, nonnegative=True, ranking_preference="rated", split="time", split_salt="s")
    assert AlsParams.from_dict({k: str(v) for k, v in p.as_dict().items()}) == p
