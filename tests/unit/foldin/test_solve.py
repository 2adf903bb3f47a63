"""The fold-in's least-squares steps on cases computed by hand, and its batching against a
plain per-user solve. That they match what Spark's ALS learns is tested on the cluster
(tests/integration/foldin/test_solve_on_cluster.py)."""

import numpy as np
import pyarrow as pa
import pytest

from movielens_recs.foldin import solve
from movielens_recs.foldin.fold import merge_ratings
from movielens_recs.recommend.rules import promote_list


def test_explicit_step_by_hand():
    # one factor; the user rated items y=1 (3 stars) and y=2 (4 stars); lambda 0.5 x 2 ratings:
    # (1 + 4 + 1) x = 3 + 8
    items = np.array([[1.0], [2.0]])
    x = solve.explicit(items, np.array([0, 0]), np.array([0, 1]), np.array([3.0, 4.0]), 0.5, 1)
    assert x[0, 0] == pytest.approx(11 / 6)


def test_implicit_step_by_hand():
    # items y = 1, 2, 3 (Y'Y = 14); preference 2 on y=2: c1 = 2, p = 1; preference -1 on y=1:
    # c1 = 1, p = 0 (and it does not count towards lambda's n+); alpha 1, lambda 0.5
    # (14 + 2 x 4 + 1 x 1 + 0.5 x 1) x = (1 + 2) x 2
    items = np.array([[1.0], [2.0], [3.0]])
    x = solve.implicit(items, np.array([0, 0]), np.array([1, 0]), np.array([2.0, -1.0]), 0.5, 1.0, 1)
    assert x[0, 0] == pytest.approx(6 / 23.5)


def test_user_biases_by_hand():
    # residuals after mu and b_i: user 0 has +1 and +2, damping 1: 3 / 3; user 1 has -2: -2 / 2
    b = solve.user_biases(np.array([0, 0, 1]), np.array([1.0, 2.0, -2.0]), 1.0, 2)
    assert b.tolist() == [1.0, -1.0]


def test_batches_of_padded_users_give_each_users_own_solve(monkeypatch):
    monkeypatch.setattr(solve, "BATCH_FLOATS", 300)  # many small batches, one longer than the budget
    rng = np.random.default_rng(3)
    items = rng.normal(size=(40, 5))
    lengths = [1, 7, 3, 40, 12, 2, 25]
    user = np.repeat(np.arange(len(lengths)), lengths)
    item = np.concatenate([rng.choice(40, size=n, replace=False) for n in lengths])
    value = rng.normal(size=len(user))
    order = rng.permutation(len(user))  # events arrive in any order
    got = solve.implicit(items, user[order], item[order], value[order], 0.1, 2.0, len(lengths))
    gram = items.T @ items
    for u in range(len(lengths)):
        y, p = items[item[user == u]], value[user == u]
        c1 = 2.0 * np.abs(p)
        a = gram + (y * c1[:, None]).T @ y + 0.1 * (p > 0).sum() * np.eye(5)
        expected = np.linalg.solve(a, y.T @ np.where(p > 0, 1 + c1, 0.0))
        assert np.allclose(got[u], expected), u


def test_unknown_movies_have_no_position():
    factors = solve.ItemFactors.from_arrays([30, 10, 20], np.arange(6).reshape(3, 2))
    assert factors.positions(np.array([10, 15, 30, 99, 1])).tolist() == [0, -1, 2, -1, -1]
    assert factors.matrix[2].tolist() == [0, 1]  # rows follow the sorted ids


def test_an_event_replaces_the_known_rating_of_the_same_movie():
    schema = pa.schema([("user_id", pa.int32()), ("movie_id", pa.int32()), ("rating", pa.float32())])
    known = pa.table({"user_id": [1, 1, 2], "movie_id": [10, 11, 10], "rating": [1.0, 2.0, 3.0]}, schema=schema)
    new = pa.table({"user_id": [1, 3], "movie_id": [10, 10], "rating": [5.0, 4.0], "event_id": [7, 8]})
    merged = merge_ratings(known, new).sort_by([("user_id", "ascending"), ("movie_id", "ascending")])
    assert merged.to_pylist() == [{"user_id": 1, "movie_id": 10, "rating": 5.0}, {"user_id": 1, "movie_id": 11, "rating": 2.0},
                                  {"user_id": 2, "movie_id": 10, "rating": 3.0}, {"user_id": 3, "movie_id": 10, "rating": 4.0}]


# the cases of tests/integration/recommend/test_recommend_all.py's Spark `promote`, answered the same
PROMOTION = {"movies": [100, 101, 102], "position": 2, "max_per_list": 2}


@pytest.mark.parametrize("top, rated, expected", [
    ([(10, .9), (11, .8), (12, .7), (13, .6)], {100},
     [(10, .9, False), (101, .8, True), (102, .8, True), (11, .8, False)]),
    ([(20, .5), (21, .4)], set(), [(20, .5, False), (100, .4, True), (101, .4, True), (21, .4, False)]),
    ([(100, .9), (31, .8), (32, .7), (33, .6)], set(),
     [(100, .9, False), (101, .8, True), (102, .8, True), (31, .8, False)]),
])
def test_promotions_in_one_list_as_the_recommend_job_places_them(top, rated, expected):
    assert promote_list(top, rated, PROMOTION, 4) == expected


def test_a_promotion_past_the_lists_end_goes_right_after_it():
    got = promote_list([(5, 30.0), (6, 20.0), (7, 10.0)], set(), {"movies": [100], "position": 5, "max_per_list": 1}, 4)
    assert got == [(5, 30.0, False), (6, 20.0, False), (7, 10.0, False), (100, 10.0, True)]
    assert promote_list([(5, 30.0), (6, 20.0)], set(), None, 1) == [(5, 30.0, False)]


def test_the_fold_in_jobs_arguments_survive_the_command_line():
    from movielens_recs.foldin.on_spark import FoldInJob

    job = FoldInJob("file:///m", "v-1", {"rank": 4, "ranking_preference": "rated"}, "/movies", (0.5, 1.0),
                    "file:///e", "file:///o", 10, (3, 4), {"movies": [7], "position": 2, "max_per_list": 1})
    assert FoldInJob.from_argv(job.to_argv()) == job
    bare = FoldInJob("m", "v", {}, "/movies", (1.0,), "e", "o", 5)
    assert FoldInJob.from_argv(bare.to_argv()) == bare
    with pytest.raises(SystemExit):
        FoldInJob.from_argv([a for a in job.to_argv() if not a.startswith("--events-uri")])
