"""The evaluation report's breakdowns against cases worked out by hand."""

import math

import pytest

from movielens_recs.evaluation.breakdown import (
    activity_bucket,
    bucket_labels,
    gini,
    histogram,
    ndcg_by_activity,
    popularity_skew,
    recommendation_counts,
    rmse_by_activity,
)


def test_activity_buckets_hold_their_lower_edge():
    assert bucket_labels((20, 50)) == ["<20", "20-49", "50+"]
    assert [activity_bucket(n, (20, 50)) for n in (0, 19, 20, 49, 50, 900)] == ["<20", "<20", "20-49", "20-49",
                                                                              "50+", "50+"]


def test_rmse_by_activity_pools_the_squared_errors_of_each_bucket():
    # user 1: one error of 2; users 2 and 3: squared errors 1 (4 ratings) and 9 (1 rating)
    errors = {1: (4.0, 1), 2: (1.0, 4), 3: (9.0, 1)}
    rows = rmse_by_activity(errors, {1: 10, 2: 30, 3: 25}, (20, 50))
    assert rows == [
        {"bucket": "<20", "users": 1, "ratings": 1, "rmse": 2.0},
        {"bucket": "20-49", "users": 2, "ratings": 5, "rmse": pytest.approx(math.sqrt(10 / 5))},
        {"bucket": "50+", "users": 0, "ratings": 0, "rmse": None},
    ]


def test_a_user_missing_from_training_counts_as_no_activity():
    assert rmse_by_activity({7: (1.0, 1)}, {}, (20,))[0] == {"bucket": "<20", "users": 1, "ratings": 1, "rmse": 1.0}


def test_ndcg_by_activity_averages_users_and_scores_a_missing_list_zero():
    relevant = {1: {"a"}, 2: {"b"}, 3: {"c"}}
    lists = {1: ["a", "x"], 2: ["x", "b"]}  # user 3 got no list
    rows = ndcg_by_activity(lists, relevant, {1: 5, 2: 300, 3: 7}, k=2, edges=(20, 50))
    assert rows[0] == {"bucket": "<20", "users": 2, "ndcg": pytest.approx((1.0 + 0.0) / 2)}
    assert rows[1] == {"bucket": "20-49", "users": 0, "ndcg": None}
    # the hit at rank 2: 1 / log2(3) against an ideal of 1
    assert rows[2] == {"bucket": "50+", "users": 1, "ndcg": pytest.approx(1 / math.log2(3))}


def test_popularity_skew_by_hand():
    # movies 1..10 rated 100, 90, ..., 10 times: each decile is one movie, the head is movie 1
    ratings = {movie: 110 - 10 * movie for movie in range(1, 11)}
    skew = popularity_skew({1: 3, 3: 1}, ratings)
    assert skew["catalog"] == 10 and skew["recommendations"] == 4
    assert skew["coverage"] == pytest.approx(0.2)
    assert skew["head_share"] == pytest.approx(0.75)
    assert skew["decile_shares"] == pytest.approx([0.75, 0, 0.25, 0, 0, 0, 0, 0, 0, 0])
    # ascending 0 x 8, 1, 3: (7 x 1 + 9 x 3) / (10 x 4)
    assert skew["gini"] == pytest.approx(34 / 40)


def test_a_recommended_movie_nobody_rated_is_part_of_the_catalog_at_the_tail():
    skew = popularity_skew({99: 1}, {1: 5})
    assert skew["catalog"] == 2 and skew["coverage"] == 0.5 and skew["head_share"] == 0.0
    # of two movies, the second starts the catalog's second half: decile 6 of 10
    assert skew["decile_shares"] == [0, 0, 0, 0, 0, 1.0, 0, 0, 0, 0]


def test_gini_of_even_and_of_concentrated_distributions():
    assert gini([3, 3, 3, 3]) == 0.0
    assert gini([0, 0, 0, 5]) == pytest.approx(3 / 4)
    assert gini([]) == 0.0 and gini([0, 0]) == 0.0


def test_recommendation_counts_read_the_top_k_only():
    assert recommendation_counts({1: [10, 11, 12], 2: [10, 13]}, k=2) == {10: 2, 11: 1, 13: 1}


def test_histogram_places_counts_by_lower_edge_and_clamps_the_ends():
    rows = histogram({0.5: 2, 1.0: 3, 5.0: 1, 7.0: 4}, lo=0.5, hi=5.0, width=0.5)
    assert len(rows) == 10 and rows[0] == {"low": 0.5, "count": 2} and rows[1]["count"] == 3
    assert rows[-1] == {"low": 5.0, "count": 5}
    assert sum(r["count"] for r in rows) == 10
